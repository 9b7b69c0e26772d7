"""The traffic generator writes exactly what a gateway would, through the real log store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gqr_serving.logstore import LogReader, LogWriter
from gqr_training.sim import AnnotatorPolicy, CooccurrencePolicy, Request, World
from gqr_training.sim.traffic import run_traffic

START = date(2025, 2, 1)


def test_round_trip_through_the_log_store(world: World, tmp_path: Path) -> None:
    cqr = CooccurrencePolicy()
    with LogWriter(tmp_path, writer_id="sim-test") as writer:
        report = run_traffic(
            world,
            AnnotatorPolicy(world.universe, seed=0),
            writer,
            start=START,
            days=2,
            impressions_per_day=300,
            arm="canary",
            model_version="v7",
            batch_size=128,
            after_day=cqr.observe,
        )
    assert report.impressions == 600 and len(report.days) == 2
    assert report.clicks > 0
    reader = LogReader(tmp_path)
    window = (datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 2, 3, tzinfo=UTC))
    impressions = list(reader.read("impression", *window))
    clicks = list(reader.read("click", *window))
    queries = list(reader.read("query", *window))
    assert len(impressions) == report.impressions
    assert len(clicks) == report.clicks
    assert len(queries) == report.impressions
    assert {(i.arm, i.model_version) for i in impressions} == {("canary", "v7")}
    assert len({i.impression_id for i in impressions}) == 600
    joined = list(reader.impressions_with_clicks(*window))
    assert sum(len(c) for _, c in joined) == report.clicks
    assert sum(bool(c) for _, c in joined) == report.clicked_impressions
    assert all(len(i.queries) == 3 and i.side_info.ai_response for i in impressions)
    # The query log carries the same sessions the CQR counter learned from.
    from_logs = CooccurrencePolicy()
    from_logs.observe_query_log(reader.sessions(*window))
    assert from_logs.pairs == cqr.pairs
    assert abs(report.empirical_ctr - report.true_ctr) < 0.05


def test_batch_policy_and_determinism(world: World) -> None:
    def batch(requests: Sequence[Request]) -> list[list[str]]:
        return [[f"{r.query} hotels", "learn more", "roth ira fees"] for r in requests]

    runs = [
        run_traffic(
            world,
            None,
            None,
            start=START,
            days=1,
            impressions_per_day=200,
            batch_policy=batch,
            seed=4,
        )
        for _ in range(2)
    ]
    assert runs[0].clicks == runs[1].clicks and runs[0].true_ctr == runs[1].true_ctr


def test_argument_errors(world: World) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        run_traffic(world, None, None, start=START, days=1, impressions_per_day=5)
    with pytest.raises(ValueError, match="days=0"):
        run_traffic(world, lambda r: [], None, start=START, days=0, impressions_per_day=5)


def test_cqr_recommends_frequent_successors() -> None:
    cqr = CooccurrencePolicy()
    cqr.observe_pairs([("a b", "a b c")] * 3 + [("a b", "a b d")] * 2 + [("a b", "x")])
    req = Request(
        "suggestion", "s", "u", "a b", (), None, datetime(2025, 1, 1, tzinfo=UTC), 2, "multiChoice"
    )
    assert cqr(req) == ["a b c", "a b d"]
    assert Counter(cqr(req)) == Counter(["a b c", "a b d"])
