"""``/v1/stats?since=``: counts only impressions shown from a point in time on (a canary step
asks from its start), whole minutes only, and says where counting began."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gateway_fakes import ScriptedBackend, client

from gqr_serving.gateway.stats import LogStats, parse_since

pytestmark = pytest.mark.anyio
GOOD = "green tea side effects <SEP> best green tea brands <SEP> green tea caffeine"
REQ = {"task": "suggestion", "query": "what is green tea", "ai_answer": "A tea."}


def _impressions(root: Path, times: list[float]) -> None:
    for i, ts in enumerate(times):
        day = datetime.fromtimestamp(ts, UTC)
        folder = root / "impression" / day.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        rec = {"ts": day.isoformat(), "arm": "stable", "model_version": "v1", "id": i}
        with open(folder / "w-test.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")


def test_since_counts_only_whole_minutes_from_it_on(tmp_path: Path) -> None:
    m0 = (math.floor(time.time() / 60) - 5) * 60.0  # a minute boundary 5 minutes ago
    _impressions(tmp_path, [m0 - 1800, m0 - 30, m0 + 10, m0 + 70])
    stats = LogStats(str(tmp_path), refresh_s=0)

    def count(window_s: float, since: float | None) -> tuple[float, int]:
        start, rows = stats.query(window_s, since=since)
        return start, sum(r.impressions for r in rows)

    assert count(3600, None)[1] == 4
    assert count(3600, m0) == (m0, 2)
    # Mid-minute: rounded up, so the impression 30 s before `since`'s minute ends never counts.
    assert count(3600, m0 - 50) == (m0, 2)
    assert count(3600, m0 - 60) == (m0 - 60, 3)
    # Both bounds: the later start wins.
    assert count(120, m0 - 3600)[1] == 0
    assert count(14 * 86400, m0 - 1700)[1] == 3


def test_since_formats() -> None:
    assert parse_since("1740830400") == 1740830400.0
    assert parse_since("2025-03-01T12:00:00Z") == 1740830400.0
    assert parse_since("2025-03-01T13:00:00+01:00") == 1740830400.0
    assert parse_since("2025-03-01T12:00:00") == 1740830400.0  # no offset: UTC
    for bad in ("soon", "nan", "inf", "-5", "1e300", "2025-13-01T00:00:00Z", ""):
        with pytest.raises(ValueError, match="since="):
            parse_since(bad)


async def test_api_since_skips_what_was_shown_before(tmp_path: Path) -> None:
    async with client(tmp_path, ScriptedBackend(GOOD)) as c:
        assert (await c.post("/v1/recommend", json=REQ)).status_code == 200
        c.app.state.gateway.sink.flush()  # type: ignore[attr-defined]
        before = time.time() - 120
        past = datetime.fromtimestamp(before, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = await c.get("/v1/stats", params={"since": past, "fresh": "true"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["start"] == math.ceil(int(before) / 60) * 60
        assert body["window_s"] == 14 * 86400  # without a window: everything kept
        assert [a["impressions"] for a in body["arms"]] == [1]
        later = str(time.time() + 61)
        body = (await c.get("/v1/stats", params={"since": later, "fresh": "true"})).json()
        assert body["arms"] == [] and body["start"] > time.time()
        r = await c.get("/v1/stats", params={"since": "yesterday"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "since"]
        spec = (await c.get("/openapi.json")).json()
    params = {p["name"] for p in spec["paths"]["/v1/stats"]["get"]["parameters"]}
    assert {"window", "since", "fresh"} <= params
    assert "start" in spec["components"]["schemas"]["StatsAnswer"]["required"]
