"""Pair selection (eq. 6) and the overlap filter."""

from __future__ import annotations

import pytest

from gqr_training.align.overlap import OverlapFilter
from gqr_training.align.pairs import select_pair


def test_pair_selection_picks_the_closest_lengths() -> None:
    chosen = [("a" * 30, 0.9), ("a" * 50, 0.8)]
    rejected = [("b" * 10, 0.1), ("b" * 48, 0.2), ("b" * 70, 0.05)]
    (c, _), (r, _) = select_pair(chosen, rejected, min_margin=0.02) or (("", 0), ("", 0))
    assert (len(c), len(r)) == (50, 48)


def test_pair_selection_respects_the_margin() -> None:
    assert select_pair([("x" * 10, 0.30)], [("y" * 10, 0.29)], min_margin=0.02) is None
    got = select_pair([("x" * 10, 0.30)], [("y" * 10, 0.29), ("z" * 40, 0.1)], 0.02)
    assert got is not None and got[1][0] == "z" * 40


def test_token_overlap_filter_drops_near_duplicates_and_counts() -> None:
    f = OverlapFilter("token")
    assert not f.keep("green tea", ["green tea prices", "green tea prices online"])
    assert not f.keep("green tea", ["green tea", "roth ira rules"])
    assert f.keep("green tea", ["green tea prices", "matcha recipe", "roth ira rules"])
    assert (f.dropped, f.checked) == (2, 3)


def test_embedding_overlap_filter_catches_paraphrases() -> None:
    f = OverlapFilter("embedding")
    assert f.near_duplicate("cheap flights", ["cheap flight tickets", "cheap flights tickets"])
    assert not f.near_duplicate("cheap flights", ["rome hotels", "sourdough bread recipe"])


def test_no_filter_keeps_everything() -> None:
    assert OverlapFilter("none").keep("a b", ["a b", "a b"])


def test_several_pairs_per_prompt_are_disjoint_and_length_matched() -> None:
    from gqr_training.align.pairs import select_pairs

    chosen = [("a" * 30, 0.9), ("a" * 50, 0.8), ("a" * 12, 0.7)]
    rejected = [("b" * 10, 0.1), ("b" * 48, 0.2), ("b" * 31, 0.05)]
    got = select_pairs(chosen, rejected, min_margin=0.02, k=3)
    assert [(len(c), len(r)) for (c, _), (r, _) in got] == [(30, 31), (50, 48), (12, 10)]
    assert select_pairs(chosen, rejected, 0.02, k=1) == got[:1]
    one_chosen = select_pairs([("x", 0.3)], [("y", 0.1), ("z", 0.2)], 0.02, k=2)
    assert one_chosen == [(("x", 0.3), ("y", 0.1))]


def test_length_gap_refuses_pairs_that_would_teach_shorter_wins() -> None:
    from gqr_training.align.pairs import select_pairs

    # Every chosen list is much shorter than every rejected one: eq. 6 alone still pairs them
    # (the closest of what is there), the gap guard does not.
    chosen = [("a" * 40, 0.9), ("a" * 44, 0.8)]
    rejected = [("b" * 60, 0.1), ("b" * 70, 0.2)]
    assert select_pair(chosen, rejected, 0.02) == (("a" * 44, 0.8), ("b" * 60, 0.1))
    assert select_pair(chosen, rejected, 0.02, max_gap=0.1) is None
    # Within 10% of the longer response: 54 vs 60 is allowed, 53 is not.
    assert select_pair([("a" * 54, 0.9)], rejected, 0.02, max_gap=0.1) is not None
    assert select_pair([("a" * 53, 0.9)], rejected, 0.02, max_gap=0.1) is None
    got = select_pairs([*chosen, ("a" * 58, 0.7), ("a" * 66, 0.6)], rejected, 0.02, 3, 0.1)
    assert [(len(c), len(r)) for (c, _), (r, _) in got] == [(58, 60), (66, 70)]


def test_length_gap_argument_names_what_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    from gqr_training.align.iterate import make_parser

    argv = ["--model", "m", "--ctr", "c", "--out", "o", "--max-length-gap"]
    assert make_parser().parse_config([*argv, "0.15"]).max_length_gap == 0.15
    assert make_parser().parse_config([*argv, "none"]).max_length_gap is None
    for bad in ("2", "-0.1", "ten"):
        with pytest.raises(SystemExit):
            make_parser().parse_config([*argv, bad])
        err = capsys.readouterr().err
        assert (
            f"--max-length-gap {bad!r}: expected a relative length gap in [0, 1] or 'none'" in err
        )
