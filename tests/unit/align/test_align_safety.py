"""DPO pairs never teach what the gateway would refuse to serve: a list holding a URL, an
e-mail address, a phone number or a blocklisted term is never the chosen response (it may be
the rejected one), for CTR pairs and click pairs alike; dpo-iterate takes the gateway's flags."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from testsupport.records import impression
from testsupport.toyworld import BAD, GOOD, PRESET, PoolEngine, requests

from gqr_serving.logstore import LogWriter
from gqr_serving.records import ClickRecord, ImpressionRecord
from gqr_serving.safety import OutputFilter, SafetyError, parse_blocklist
from gqr_training.align.clicks import click_pairs
from gqr_training.align.data import completion_text, make_task
from gqr_training.align.pairs import PairConfig, build_pairs
from gqr_training.align.scoring import from_prob_fn

UNSAFE = ["at www.spam.com", "mail deals@spam.org", "call 415-555-0100", "for idiots"]
BLOCKLIST = parse_blocklist("terms: [idiots]\n", "blocklist.yaml")


def _unsafe(text: str) -> bool:
    return any(u in text for u in UNSAFE)


def _scorer(unsafe_prob: float) -> Any:
    """Good aspects 0.3, bad ones 0.02, unsafe ones ``unsafe_prob`` (clickbait: high)."""

    def prob(q: str) -> float:
        if _unsafe(q):
            return unsafe_prob
        return 0.3 if any(q.endswith(" " + a) for a in GOOD) else 0.02

    def probs(user: str, queries: Sequence[str]) -> list[float]:
        return [prob(q) / (k + 1) for k, q in enumerate(queries)]

    return from_prob_fn(probs)


def _pairs(unsafe_prob: float, safety: OutputFilter | None) -> tuple[list[Any], Any]:
    tasks = [make_task(PRESET, r) for r in requests(16)]
    cfg = PairConfig(max_length_gap=None, safety=safety)
    engine: Any = PoolEngine(4, GOOD + BAD + UNSAFE)
    return build_pairs(engine, PRESET, tasks, _scorer(unsafe_prob), cfg)


def test_clickbait_spam_is_chosen_without_the_filter_and_never_with_it() -> None:
    pairs, _ = _pairs(0.9, None)  # the reward model loves spam: the trap the filter closes
    assert any(_unsafe(p.chosen) for p in pairs)

    pairs, stats = _pairs(0.9, OutputFilter(blocklist=BLOCKLIST))
    assert pairs and not any(_unsafe(p.chosen) for p in pairs)
    assert stats.unsafe_chosen > 0 and stats.as_dict()["unsafe_chosen"] == stats.unsafe_chosen


def test_unsafe_lists_may_still_be_rejected() -> None:
    pairs, _ = _pairs(0.01, OutputFilter(blocklist=BLOCKLIST))
    assert pairs and not any(_unsafe(p.chosen) for p in pairs)
    assert any(_unsafe(p.rejected) for p in pairs)  # what the policy learns to avoid


def test_each_unsafe_kind_alone_keeps_a_list_from_being_chosen() -> None:
    for kind, bad in zip(("url", "email", "phone"), UNSAFE, strict=False):
        pairs, _ = _pairs(0.9, OutputFilter(kind))
        assert not any(bad in p.chosen for p in pairs), kind


T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _write(root: Path, shown: list[tuple[str, list[str], list[int]]]) -> None:
    records: list[ImpressionRecord | ClickRecord] = []
    for i, (query, queries, clicks) in enumerate(shown):
        ts = T0 + timedelta(minutes=i)
        records.append(
            impression(f"i{i}", ts, query, queries, session_id=f"s{i}", user_key=f"u{i}")
        )
        records += [ClickRecord(impression_id=f"i{i}", position=p, ts=ts) for p in clicks]
    with LogWriter(root, writer_id="t", fsync_interval_s=0.0) as w:
        w.write_many(records)


def test_a_clicked_unsafe_list_is_never_chosen_from_clicks(tmp_path: Path) -> None:
    spam = ["green tea at teashop.com", "green tea caffeine", "green tea brands"]
    plain = ["green tea recipes", "green tea history", "green tea prices"]
    _write(tmp_path, [("green tea", spam, [0, 1]), ("green tea", plain, [])])
    pairs, stats = click_pairs(str(tmp_path), PRESET, max_length_gap=None)
    assert [p.chosen for p in pairs] == [completion_text(spam)]  # without a filter

    pairs, stats = click_pairs(str(tmp_path), PRESET, max_length_gap=None, safety=OutputFilter())
    assert pairs == [] and stats.unsafe_clicked == 1

    _write(tmp_path / "more", [("green tea", spam, [0]), ("green tea", plain, [2])])
    pairs, _ = click_pairs(
        str(tmp_path / "more"), PRESET, max_length_gap=None, safety=OutputFilter()
    )
    (p,) = pairs
    assert p.chosen == completion_text(plain) and p.rejected == completion_text(spam)


BASE = ["--model", "m", "--ctr", "c", "--out", "o"]


def test_dpo_iterate_takes_the_gateway_filter_flags(tmp_path: Path) -> None:
    from gqr_training.align.iterate import make_parser

    path = tmp_path / "blocklist.yaml"
    path.write_text("terms: [idiots]\n")
    cfg = make_parser().parse_config(
        [*BASE, "--pii-filters", "url,phone", "--blocklist-file", str(path)]
    )
    safety = cfg.iter_config().pairs.safety
    assert safety is not None and safety.pii == {"url", "phone"}
    assert safety.reason("tea for idiots") == "blocklist_term"
    default = make_parser().parse_config(BASE).iter_config().pairs.safety
    assert default is not None and default.reason("mail a@b.org") == "email"
    assert (
        make_parser().parse_config([*BASE, "--pii-filters", "none"]).iter_config().pairs.safety
        is None
    )


def test_dpo_iterate_refuses_bad_filter_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gqr_training.align.iterate import make_parser

    with pytest.raises(SystemExit):
        make_parser().parse_config([*BASE, "--pii-filters", "url,fax"])
    err = capsys.readouterr().err
    assert "--pii-filters 'url,fax': expected all, none, or a comma list of url, email" in err

    path = tmp_path / "blocklist.yaml"
    path.write_text("regexes: ['(x']\n")
    cfg = make_parser().parse_config([*BASE, "--blocklist-file", str(path)])
    with pytest.raises(SafetyError, match=r"blocklist\.yaml: regexes\[0\] '\(x' is not a valid"):
        cfg.iter_config()
