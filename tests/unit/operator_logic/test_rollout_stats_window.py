"""A canary step counts only the traffic since it started, however the stats window slides.

The operator's tick (`progress.advance`: stats URL, fetch, parse, rollout machine) runs against
the gateway's real counting code (`LogStats` over a log store, `parse_window`/`parse_since`) on
a test clock: stable traffic from before the step leaves a one-hour window while the step runs.
Counting from a baseline of cumulative window counts went wrong exactly there: the count fell
below the baseline, the baseline was reset to zero, and the step counted the whole window.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.unit.operator.cases import patched

from gqr_contracts.stats import ArmStats, StatsAnswer
from gqr_operator import observe, progress
from gqr_operator.models import parse_spec
from gqr_serving.gateway import stats as gateway_stats

URL = "http://gw.test/v1/stats?window=1h"
SPEC = parse_spec(
    patched(
        rollout={
            "steps": [{"weight": 20, "minImpressions": 1_000_000}, {"weight": 50}],
            "analysis": {"statsUrl": URL},
        }
    )
)


class Gateway:
    """The gateway's /v1/stats over a real log store, on a clock the test moves."""

    def __init__(self, root: Path, now: float, *, honours_since: bool = True) -> None:
        self.root, self.now, self.honours_since = root, now, honours_since
        self.stats = gateway_stats.LogStats(str(root), refresh_s=0)
        self.asked: list[str] = []

    def show(self, arm: str, version: str, n: int, start: float, end: float) -> None:
        """n impressions spread evenly over [start, end)."""
        for i in range(n):
            ts = datetime.fromtimestamp(start + (end - start) * i / n, UTC)
            folder = self.root / "impression" / ts.strftime("%Y-%m-%d")
            folder.mkdir(parents=True, exist_ok=True)
            rec = {"ts": ts.isoformat(), "arm": arm, "model_version": version}
            with open(folder / "w-test.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")

    def get(self, url: str, timeout: float = 0) -> httpx.Response:
        self.asked.append(url)
        q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        window = gateway_stats.parse_window(q["window"])
        since = gateway_stats.parse_since(q["since"]) if "since" in q else None
        start, rows = self.stats.query(window, since=since if self.honours_since else None)
        arms = [ArmStats(**vars(r), ctr=0.0) for r in rows]
        doc = StatsAnswer(window_s=window, start=start, arms=arms, refreshed_at=self.now)
        body = doc.model_dump(exclude={"start"} if not self.honours_since else set())
        return httpx.Response(200, json=body, request=httpx.Request("GET", url))


class Kube:
    """Only what a rollout tick reads: the canary's Deployment, Available."""

    def get(self, kind: Any, namespace: str, name: str) -> dict[str, Any]:
        return {"status": {"conditions": [{"type": "Available", "status": "True"}]}}

    def list(self, kind: Any, namespace: str, selector: str) -> list[dict[str, Any]]:
        return []


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    now = (time.time() // 60 - 180) * 60  # a minute boundary 3 hours ago
    gw = Gateway(tmp_path, now)
    clock = SimpleNamespace(time=lambda: gw.now, monotonic=time.monotonic)
    monkeypatch.setattr(gateway_stats, "time", clock)
    monkeypatch.setattr(observe.httpx, "get", gw.get)
    return gw


class Operator:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        rollout = {
            "phase": "WaitingForCanaryReady",
            "stable": {"version": "v1", "artifactUri": "s3://a/v1"},
            "candidate": {"version": "v2", "artifactUri": "s3://a/v2"},
            "stepIndex": -1,
            "weight": 0,
            "history": [],
        }
        self.body: dict[str, Any] = {
            "metadata": {"name": "gqr", "namespace": "ns"},
            "status": {"rollout": rollout},
        }
        self.events: list[str] = []

    def tick(self) -> dict[str, Any]:
        now = datetime.fromtimestamp(self.gw.now, UTC)
        out = progress.advance(Kube(), self.body, SPEC, now)  # type: ignore[arg-type]
        self.body["status"].update(json.loads(json.dumps(out.status)))
        self.events += [f"{e.reason}: {e.message}" for e in out.events]
        return dict(self.body["status"]["rollout"])


def test_a_step_counts_only_its_own_traffic_while_the_window_slides(gateway: Gateway) -> None:
    t0 = gateway.now
    gateway.show("stable", "v1", 3000, t0 - 3600, t0)  # the hour before the canary
    op = Operator(gateway)
    ro = op.tick()
    assert ro["phase"] == "Progressing" and ro["stepStarted"]
    before = (ro["lastAnalysis"] or {}).get("stable", {}).get("impressions", 0)
    assert before == 0, "the hour before the step is not the step's"

    # 30 minutes into the step: 20% of the traffic to the canary; half of the hour before the
    # step has left the one-hour window, so the window's stable count fell (3000 -> 2240).
    # Counts are whole minutes from the step's start on: its first, partial minute is left out.
    gateway.show("stable", "v1", 40, t0, t0 + 60)
    gateway.show("canary", "v2", 10, t0, t0 + 60)
    gateway.show("stable", "v1", 700, t0 + 60, t0 + 1800)
    gateway.show("canary", "v2", 175, t0 + 60, t0 + 1800)
    gateway.now = t0 + 1800
    ro = op.tick()
    last = ro["lastAnalysis"]
    assert (last["stable"]["impressions"], last["canary"]["impressions"]) == (700, 175)
    assert "since=" in gateway.asked[-1]

    # 50 minutes in: the step's counts only grow.
    gateway.show("stable", "v1", 400, t0 + 1800, t0 + 3000)
    gateway.show("canary", "v2", 100, t0 + 1800, t0 + 3000)
    gateway.now = t0 + 3000
    last = op.tick()["lastAnalysis"]
    assert (last["stable"]["impressions"], last["canary"]["impressions"]) == (1100, 275)
    assert op.events == ["CanaryStepStarted: step 1/2: 20% to canary"]


def test_counts_that_cannot_be_limited_to_the_step_hold_the_rollout(gateway: Gateway) -> None:
    gateway.honours_since = False  # a gateway that predates `since`: no `start` in its answer
    t0 = gateway.now
    gateway.show("stable", "v1", 3000, t0 - 3600, t0)
    op = Operator(gateway)
    op.tick()
    gateway.show("canary", "v2", 175, t0, t0 + 900)
    gateway.now = t0 + 900  # within spec.rollout.analysis.maxStatsOutageSeconds (1800)
    ro = op.tick()
    assert ro["lastAnalysis"] is None and ro["statsUnavailableSince"]
    (warning,) = [e for e in op.events if e.startswith("StatsUnavailable")]
    assert "ignores `since`" in warning
