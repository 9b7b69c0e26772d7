"""impressions_with_clicks and sessions: the joins the CTR and COR training read."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from logstore_factories import T0, click, impression, query

from gqr_serving.logstore import LogReader, LogWriter


def test_impressions_get_their_clicked_positions_once_each(tmp_path: Path) -> None:
    later = T0 + timedelta(minutes=1)
    with LogWriter(tmp_path, "w") as w:
        w.write_many([impression(1), impression(2), impression(3, n=2)])
        w.write_many(
            [
                click(1, 0, later),
                click(1, 2, later),
                click(1, 2, later),  # repeated click: counts once
                click(3, 5, later),  # position not shown
                click("missing", 0, later),
            ]
        )
    r = LogReader(tmp_path)
    got = {imp.impression_id: pos for imp, pos in r.impressions_with_clicks()}
    assert got == {"imp-1": frozenset({0, 2}), "imp-2": frozenset(), "imp-3": frozenset()}
    assert r.stats.duplicate_clicks == 1
    assert r.stats.invalid_click_positions == 1
    assert r.stats.unmatched_clicks == 1


def test_clicks_on_impressions_outside_the_window_are_ignored_and_counted(tmp_path: Path) -> None:
    day_before = T0 - timedelta(days=1)
    with LogWriter(tmp_path, "w") as w:
        w.write_many([impression("old", day_before), impression("new", T0)])
        w.write_many([click("old", 0, T0), click("new", 1, T0 + timedelta(seconds=5))])
    r = LogReader(tmp_path)
    got = list(r.impressions_with_clicks(T0 - timedelta(hours=1), T0 + timedelta(hours=1)))
    assert [(imp.impression_id, pos) for imp, pos in got] == [("imp-new", frozenset({1}))]
    assert r.stats.unmatched_clicks == 1


def test_sessions_group_queries_in_time_order(tmp_path: Path) -> None:
    s = timedelta(seconds=1)
    with LogWriter(tmp_path, "w") as w:
        w.write_many(
            [
                query("b", "b2", T0 + 5 * s),
                query("a", "a2", T0 + 3 * s),
                query("b", "b1", T0 + 1 * s),
                query("a", "a1", T0 + 2 * s),
                query("c", "c1", T0 - timedelta(days=1)),  # outside the window below
            ]
        )
        w.write(query("a", "a0", T0))  # a later write, earlier ts
    r = LogReader(tmp_path)
    got = [(sid, [q.query for q in qs]) for sid, qs in r.sessions(T0, T0 + timedelta(hours=1))]
    assert got == [("a", ["a0", "a1", "a2"]), ("b", ["b1", "b2"])]
