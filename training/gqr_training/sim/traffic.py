"""Run a policy against the simulated world for D days and log what a real gateway would log.

Per request: a QueryLogRecord (the query the user typed), an ImpressionRecord (the list shown),
a ClickRecord per click; written through the log store in batches. The report carries the true
CTR (mean true list CTR, known only here) beside the empirical one (clicked impressions / all).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from gqr_contracts.reward import list_reward as list_ctr
from gqr_serving.records import ClickRecord, ImpressionRecord, QueryLogRecord, SideInfo
from gqr_training.sim.sessions import Request
from gqr_training.sim.world import World, draw_clicks

BatchPolicy = Callable[[Sequence[Request]], list[list[str]]]


class RecordSink(Protocol):
    """What the traffic generator needs of ``gqr_serving.logstore.LogWriter``."""

    def write_many(self, records: Sequence[Any], /) -> Any: ...


@dataclass
class DayStats:
    day: str
    impressions: int = 0
    clicked_impressions: int = 0
    clicks: int = 0
    true_ctr_sum: float = 0.0

    @property
    def true_ctr(self) -> float:
        return self.true_ctr_sum / max(1, self.impressions)

    @property
    def empirical_ctr(self) -> float:
        return self.clicked_impressions / max(1, self.impressions)


@dataclass
class TrafficReport:
    """Totals of one traffic run; CTRs are per impression (list CTR)."""

    impressions: int = 0
    clicks: int = 0
    clicked_impressions: int = 0
    queries_logged: int = 0
    true_ctr: float = 0.0
    empirical_ctr: float = 0.0
    days: list[DayStats] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["days"] = [
            {
                "day": d.day,
                "impressions": d.impressions,
                "true_ctr": round(d.true_ctr, 5),
                "empirical_ctr": round(d.empirical_ctr, 5),
            }
            for d in self.days
        ]
        return out


def run_traffic(
    world: World,
    policy: Callable[[Request], list[str]] | None,
    sink: RecordSink | None,
    *,
    start: date,
    days: int,
    impressions_per_day: int,
    task: str = "suggestion",
    batch_policy: BatchPolicy | None = None,
    deployment: str = "local",
    arm: str = "stable",
    model_version: str = "sim",
    batch_size: int = 5000,
    seed: int = 0,
    after_day: Callable[[list[Request]], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> TrafficReport:
    """Serve ``days`` x ``impressions_per_day`` requests with the policy; log and score them.

    Give ``policy`` (one request at a time) or ``batch_policy`` (a batch of requests, e.g. an
    LLM generating in batches). ``after_day`` sees each day's requests once they are served
    (the CQR baseline learns from them). ``progress`` is called with the impressions done.
    """
    if (policy is None) == (batch_policy is None):
        raise ValueError("give exactly one of policy and batch_policy")
    if days < 1 or impressions_per_day < 1:
        raise ValueError(f"days={days} and impressions_per_day={impressions_per_day} must be >= 1")
    rng = random.Random(f"clicks:{seed}:{model_version}:{arm}")
    report = TrafficReport()
    for d in range(days):
        day = start + timedelta(days=d)
        requests = world.sample_requests(day, impressions_per_day, task)
        stats = DayStats(day.isoformat())
        for lo in range(0, len(requests), batch_size):
            batch = requests[lo : lo + batch_size]
            if batch_policy is not None:
                lists = batch_policy(batch)
            else:
                assert policy is not None
                lists = [policy(r) for r in batch]
            if len(lists) != len(batch):
                raise ValueError(
                    f"the policy returned {len(lists)} lists for {len(batch)} requests"
                )
            records: list[Any] = []
            for i, (req, queries) in enumerate(zip(batch, lists, strict=True)):
                records.extend(
                    _serve(
                        world,
                        req,
                        queries,
                        stats,
                        rng,
                        deployment,
                        arm,
                        model_version,
                        f"{day:%Y%m%d}-{lo + i:07d}",
                    )
                )
            if sink is not None:
                sink.write_many(records)
            if progress is not None:
                progress(len(batch))
        report.days.append(stats)
        if after_day is not None:
            after_day(requests)
    report.impressions = sum(s.impressions for s in report.days)
    report.queries_logged = report.impressions
    report.clicks = sum(s.clicks for s in report.days)
    report.clicked_impressions = sum(s.clicked_impressions for s in report.days)
    report.true_ctr = sum(s.true_ctr_sum for s in report.days) / max(1, report.impressions)
    report.empirical_ctr = report.clicked_impressions / max(1, report.impressions)
    return report


def _serve(
    world: World,
    req: Request,
    queries: list[str],
    stats: DayStats,
    rng: random.Random,
    deployment: str,
    arm: str,
    model_version: str,
    serial: str,
) -> list[Any]:
    probs = world.true_click_probs(req, queries)
    clicked = draw_clicks(probs, req.component, rng)
    stats.impressions += 1
    stats.true_ctr_sum += list_ctr(probs, req.component)
    stats.clicks += len(clicked)
    stats.clicked_impressions += bool(clicked)
    impression_id = _impression_id(world.seed, deployment, arm, model_version, serial)
    out: list[Any] = [
        QueryLogRecord(
            session_id=req.session_id, ts=req.ts, query=req.query, user_key=req.user_key
        ),
        ImpressionRecord(
            impression_id=impression_id,
            ts=req.ts,
            deployment=deployment,
            task=req.task,
            arm=arm,
            model_version=model_version,
            session_id=req.session_id,
            user_key=req.user_key,
            query=req.query,
            side_info=SideInfo(history=list(req.history), ai_response=req.ai_response),
            queries=list(queries),
        ),
    ]
    for k in clicked:
        out.append(
            ClickRecord(
                impression_id=impression_id,
                position=k,
                ts=req.ts + timedelta(seconds=rng.uniform(2.0, 30.0) + k),
            )
        )
    return out


def _impression_id(seed: int, deployment: str, arm: str, model_version: str, serial: str) -> str:
    # Deterministic, yet unique across arms and model versions writing into one store.
    tag = hashlib.blake2b(f"{seed}:{deployment}:{arm}:{model_version}".encode(), digest_size=4)
    return f"sim-{tag.hexdigest()}-{serial}"
