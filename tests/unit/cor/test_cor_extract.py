"""Extraction rules: normalisation, gap split, self-transitions, top-M, minimum count."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gqr_serving.cor.normalize import dedup_key, normalize_query
from gqr_training.cor.extract import ExtractConfig, count_transitions, extract, prune, segments


def test_normalisation_folds_case_width_and_whitespace() -> None:
    fullwidth_pocono = "\uff30\uff4f\uff43\uff4f\uff4e\uff4f"
    assert normalize_query(f"  {fullwidth_pocono}\tMOUNTAINS \n") == "pocono mountains"
    assert normalize_query("Straße") == normalize_query("STRASSE")
    assert normalize_query(" \t ") == ""


def test_dedup_key_ignores_punctuation_and_order() -> None:
    assert dedup_key("403(b) tax code") == dedup_key("tax code 403 b")
    assert dedup_key("tax code") != dedup_key("tax codes")


@given(st.text(max_size=40))
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalize_query(text)
    assert normalize_query(once) == once
    assert once == once.strip() and "  " not in once


def test_long_gap_splits_the_session() -> None:
    events = [(0.0, "a"), (60.0, "b"), (60.0 + 3600, "c"), (60.0 + 3660, "d")]
    assert segments(events, 1800.0) == [["a", "b"], ["c", "d"]]
    assert segments(events, None) == [["a", "b", "c", "d"]]
    counts = count_transitions([("s", events)], ExtractConfig(max_gap_s=1800.0))
    assert ("b", "c") not in counts and counts[("a", "b")] == 1


def test_events_without_time_never_split() -> None:
    assert segments([(None, "a"), (None, "b")], 1.0) == [["a", "b"]]


def test_self_transitions_dropped_without_breaking_the_chain() -> None:
    events = [(None, "A"), (None, "a "), (None, "b"), (None, "")]
    counts = count_transitions([("s", events)], ExtractConfig())
    assert counts == Counter({("a", "b"): 1})


def test_top_m_and_min_count() -> None:
    counts = Counter({("q", "x"): 5, ("q", "y"): 3, ("q", "z"): 3, ("q", "w"): 1, ("r", "x"): 1})
    rows = prune(counts, ExtractConfig(top_m=2, min_count=2))
    assert rows == [("q", "x", 5), ("q", "y", 3)]  # ties broken alphabetically


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="top_m"):
        ExtractConfig(top_m=0)
    with pytest.raises(ValueError, match="max_gap_s"):
        ExtractConfig(max_gap_s=-1)


queries = st.sampled_from(["a", "B", "b ", "c", "\uff23", "d", "", " e"])
session = st.lists(st.tuples(st.none() | st.floats(0, 1e5), queries), max_size=12)


@given(
    st.lists(session, max_size=6),
    st.integers(1, 3),
    st.integers(1, 3),
    st.none() | st.floats(1, 1e4),
)
def test_extraction_properties(
    sessions: list[list[tuple[float | None, str]]], top_m: int, min_count: int, gap: float | None
) -> None:
    cfg = ExtractConfig(max_gap_s=gap, top_m=top_m, min_count=min_count)
    rows, stats = extract([(str(i), s) for i, s in enumerate(sessions)], cfg)
    per_q = Counter(q for q, _, _ in rows)
    for q, nxt, c in rows:
        assert q != nxt, "no self-transitions"
        assert c >= min_count
        assert normalize_query(q) == q and normalize_query(nxt) == nxt and q and nxt
    assert all(n <= top_m for n in per_q.values())
    # Without pruning, the counts add up to the transitions seen.
    full = count_transitions([(str(i), s) for i, s in enumerate(sessions)], cfg)
    assert sum(full.values()) == stats.transitions
    # A transition never spans more than one gap-split segment.
    assert stats.transitions <= stats.events - stats.segments
