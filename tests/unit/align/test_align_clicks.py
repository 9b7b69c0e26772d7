"""Pairs from raw clicks (the *_clk baselines): a clicked list over an unclicked one shown for
the same user query, eq. 6 among them, the served prompt with refreshed COR."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from testsupport.records import impression

from gqr_serving.logstore import LogWriter
from gqr_serving.prompt import load_preset
from gqr_serving.records import ClickRecord, ImpressionRecord
from gqr_training.align.clicks import click_pairs
from gqr_training.align.data import completion_text

T0 = datetime(2025, 1, 1, tzinfo=UTC)
PRESET = load_preset("suggestion")


def _write(root: Path, shown: list[tuple[str, list[str], list[int]]]) -> None:
    records: list[ImpressionRecord | ClickRecord] = []
    for i, (query, queries, clicks) in enumerate(shown):
        ts = T0 + timedelta(minutes=i)
        iid = f"i{i}"
        records.append(
            impression(
                iid, ts, query, queries, session_id=f"s{i}", user_key=f"u{i}", model_version="v"
            )
        )
        records += [ClickRecord(impression_id=iid, position=p, ts=ts) for p in clicks]
    with LogWriter(root, writer_id="t", fsync_interval_s=0.0) as w:
        w.write_many(records)


GOOD = ["green tea benefits", "green tea caffeine", "green tea brands"]
BAD = ["green tea recipes", "green tea history", "green tea prices"]
LONG = ["green tea and weight loss studies", "green tea caffeine content per cup", "matcha tea"]


def test_a_clicked_list_is_chosen_over_an_unclicked_one_for_the_same_query(
    tmp_path: Path,
) -> None:
    _write(
        tmp_path,
        [
            ("green tea", BAD, []),
            ("Green  Tea", GOOD, [0, 2]),  # the same query, normalised
            ("green tea", LONG, []),  # too long beside GOOD: eq. 6 takes BAD
            ("black coffee", ["black coffee beans", "black coffee calories"], [1]),  # no rejected
            ("oolong", ["oolong tea taste", "oolong tea origin"], []),  # no chosen
        ],
    )
    pairs, stats = click_pairs(str(tmp_path), PRESET, cor=lambda q: ["matcha"])
    assert (stats.impressions, stats.queries, stats.with_both, stats.pairs) == (5, 3, 1, 1)
    (p,) = pairs
    assert p.chosen == completion_text(GOOD) and p.rejected == completion_text(BAD)
    assert (p.chosen_reward, p.rejected_reward) == (2.0, 0.0)
    # The prompt is the first logged request of the query, with the given COR.
    assert "green tea" in p.prompt and "matcha" in p.prompt


def test_the_length_limit_refuses_a_pair_rather_than_teach_shorter_wins(tmp_path: Path) -> None:
    _write(tmp_path, [("green tea", LONG, [0]), ("green tea", GOOD, [])])
    pairs, stats = click_pairs(str(tmp_path), PRESET)
    assert pairs == [] and stats.with_both == 1 and stats.length_gap_refused == 1
    pairs, _ = click_pairs(str(tmp_path), PRESET, max_length_gap=None)
    assert len(pairs) == 1


def test_max_pairs_samples_reproducibly(tmp_path: Path) -> None:
    shown = []
    for i in range(12):
        q = f"topic{i} tea"
        shown += [
            (q, [f"{q} benefits", f"{q} caffeine"], [0]),
            (q, [f"{q} recipes", f"{q} prices"], []),
        ]
    _write(tmp_path, shown)
    a, stats = click_pairs(str(tmp_path), PRESET, max_pairs=5, seed=3)
    b, _ = click_pairs(str(tmp_path), PRESET, max_pairs=5, seed=3)
    assert len(a) == 5 and a == b and stats.with_both == 12
    assert stats.chosen_chars > 0 and stats.rejected_chars > 0
