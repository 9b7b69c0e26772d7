"""The invalid-traffic rules (gqr_serving.invalid) and dedup by impression id, as /v1/stats and
the training join apply them: the same record twice counts once, invalid traffic is left out
of both and counted, honest simulated users are not touched."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from testsupport.records import impression

from gqr_serving.gateway.ids import Keys
from gqr_serving.gateway.stats import LogStats, SeenIds, id_hash
from gqr_serving.invalid import (
    InvalidTrafficPolicy,
    UserTally,
    click_verdict,
    impression_verdict,
)
from gqr_serving.logstore import LogReader, LogWriter
from gqr_serving.records import ClickRecord

POLICY = InvalidTrafficPolicy()
KEYS = Keys(b"k" * 32)


def test_rules() -> None:
    assert click_verdict(50, InvalidTrafficPolicy(min_click_ms=300)) == "too_fast"
    assert click_verdict(5000, InvalidTrafficPolicy(min_click_ms=300)) is None
    assert click_verdict(1, POLICY) is None  # off by default
    assert impression_verdict({0: None, 1: None, 2: None}, 3, POLICY) == "all_positions"
    assert impression_verdict({0: None, 2: None}, 3, POLICY) is None
    assert impression_verdict({0: None, 1: None}, 2, POLICY) is None  # too short to tell
    assert impression_verdict({0: None, 1: None, 2: None}, 3, InvalidTrafficPolicy(0)) == (
        "all_positions"
    )
    off = InvalidTrafficPolicy(all_positions_n=0)
    assert impression_verdict({0: None, 1: None, 2: None}, 3, off) is None
    assert impression_verdict({1: "too_fast"}, 3, POLICY) == "too_fast"  # recorded verdict
    with pytest.raises(ValueError, match="user_max_ctr=0"):
        InvalidTrafficPolicy(user_max_ctr=0)


def test_user_ceiling_needs_enough_impressions() -> None:
    tally = UserTally()
    for i in range(60):
        tally.add("farm", True)
        tally.add("honest", i % 7 == 0)
        tally.add("few", True) if i < 10 else None
        tally.add("", True)  # anonymous: never flagged
    assert tally.flagged(POLICY) == {"farm"}
    assert tally.flagged(InvalidTrafficPolicy(user_max_ctr=1.0)) == set()


def _iid(ts: datetime, n: int = 3) -> str:
    return KEYS.new_impression_id(int(ts.timestamp() * 1000), n, "stable", "v1")


def _write(root: Path, records: list[object]) -> None:
    with LogWriter(root, writer_id="t") as w:
        w.write_many(records)  # type: ignore[arg-type]


def test_same_impression_twice_counts_once_in_stats_and_join(tmp_path: Path) -> None:
    now = datetime.now(UTC) - timedelta(seconds=5)
    iid = _iid(now)
    imp = impression(iid, now, "tea", ["a", "b", "c"], session_id="s", user_key="u")
    click = ClickRecord(impression_id=iid, position=1, ts=now + timedelta(seconds=3))
    _write(tmp_path, [imp, click])
    _write(tmp_path, [imp, click])  # a spool replayed after a crash: the same records again
    stats = LogStats(str(tmp_path), refresh_s=0)
    _, (row,) = stats.query(3600)
    assert (row.impressions, row.clicks, row.clicked_impressions) == (1, 1, 1)
    assert stats.duplicate_impressions == 1
    reader = LogReader(tmp_path)
    joined = list(reader.impressions_with_clicks())
    assert [(i.impression_id, c) for i, c in joined] == [(iid, frozenset({1}))]
    assert reader.stats.duplicate_impressions == 1 and reader.stats.duplicate_clicks == 1


def test_invalid_traffic_is_left_out_and_counted_by_both(tmp_path: Path) -> None:
    now = datetime.now(UTC) - timedelta(seconds=30)
    later = now + timedelta(seconds=4)
    honest, farm, flagged = _iid(now), _iid(now), _iid(now)
    records: list[object] = [
        impression(iid, now, "tea", ["a", "b", "c"], session_id="s", user_key=user)
        for iid, user in ((honest, "u1"), (farm, "f1"), (flagged, "f2"))
    ]
    records += [ClickRecord(impression_id=honest, position=0, ts=later)]
    records += [ClickRecord(impression_id=farm, position=p, ts=later) for p in range(3)]
    records += [ClickRecord(impression_id=flagged, position=2, ts=later, invalid="too_fast")]
    _write(tmp_path, records)
    _, (row,) = LogStats(str(tmp_path), refresh_s=0).query(3600)
    assert (row.impressions, row.clicks, row.clicked_impressions) == (1, 1, 1)
    assert (row.invalid_impressions, row.invalid_clicks) == (2, 4)
    reader = LogReader(tmp_path)
    assert [i.impression_id for i, _ in reader.impressions_with_clicks()] == [honest]
    s = reader.stats
    assert (s.invalid_impressions, s.invalid_clicks) == (2, 4)
    assert s.invalid_by_reason == {"all_positions": 1, "too_fast": 1}


def test_join_drops_every_impression_of_a_user_over_the_click_ceiling(tmp_path: Path) -> None:
    t0 = datetime.now(UTC) - timedelta(hours=2)
    records: list[object] = []
    for i in range(60):
        ts = t0 + timedelta(seconds=60 * i)
        for user in ("farm", "honest"):
            iid = f"{user}-{i}"
            records.append(
                impression(iid, ts, "tea", ["a", "b", "c"], session_id=user, user_key=user)
            )
            if user == "farm" or i % 8 == 0:
                records.append(
                    ClickRecord(impression_id=iid, position=0, ts=ts + timedelta(seconds=9))
                )
    _write(tmp_path, records)
    reader = LogReader(tmp_path)
    users = {i.user_key for i, _ in reader.impressions_with_clicks()}
    assert users == {"honest"}
    assert reader.stats.invalid_users == 1 and reader.stats.invalid_by_reason == {"user_ctr": 60}
    assert reader.stats.records == 60 * 2 + 60 + 8  # impressions counted once, not per pass
    off = LogReader(tmp_path).impressions_with_clicks(policy=InvalidTrafficPolicy(user_max_ctr=1))
    assert len(list(off)) == 120


def test_honest_simulated_users_are_not_filtered(tmp_path: Path) -> None:
    from gqr_training.sim import AnnotatorPolicy, World
    from gqr_training.sim.traffic import run_traffic

    world = World(0)
    with LogWriter(tmp_path, writer_id="sim") as writer:
        report = run_traffic(
            world,
            AnnotatorPolicy(world.universe, seed=0),
            writer,
            start=date(2025, 2, 1),
            days=2,
            impressions_per_day=3000,
        )
    reader = LogReader(tmp_path)
    joined = list(reader.impressions_with_clicks())
    s = reader.stats
    # Honest users click every shown query once in a long while; no user is over the ceiling.
    assert set(s.invalid_by_reason) <= {"all_positions"} and s.invalid_users == 0
    assert s.invalid_impressions <= 0.005 * report.impressions, s
    assert len(joined) + s.invalid_impressions == report.impressions


def test_seen_ids_pack_keeps_membership() -> None:
    seen = SeenIds()
    hs = [id_hash(f"id-{i}") for i in range(1000)]
    assert all(seen.add(h) for h in hs)
    seen.pack()
    assert len(seen.packed) == 1000 and not seen.recent
    assert not any(seen.add(h) for h in hs)
    assert seen.add(id_hash("new")) and id_hash("new") in seen
