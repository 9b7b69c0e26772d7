"""Session sources: TSV and TREC Session Track XML."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from gqr_training.cor.evaluate import DEFAULT_TREC
from gqr_training.cor.sources import parse_time, trec_sessions, tsv_sessions


def test_tsv_with_header_groups_and_sorts_by_time(tmp_path: Path) -> None:
    path = tmp_path / "s.tsv"
    path.write_text(
        "session_id\ttime\tquery\n"
        "s1\t2024-05-01T10:00:05Z\tsecond\n"
        "s2\t100\tother\n"
        "s1\t2024-05-01T10:00:00Z\tfirst\n"
    )
    got = dict(tsv_sessions(path))
    assert [q for _, q in got["s1"]] == ["first", "second"]
    assert got["s2"] == [(100.0, "other")]


def test_tsv_gz_without_header_and_without_times(tmp_path: Path) -> None:
    path = tmp_path / "s.tsv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("s\t\tb\ns\t\ta\n")
    assert list(tsv_sessions(path)) == [("s", [(None, "b"), (None, "a")])]


def test_tsv_bad_row_names_line_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("s\t1\tok\ns\tonly two\n")
    with pytest.raises(ValueError, match=r"bad.tsv:2: expected 3 tab-separated columns"):
        list(tsv_sessions(path))


def test_parse_time_forms() -> None:
    assert parse_time("") is None
    assert parse_time("12.5") == 12.5
    assert parse_time("1970-01-01T00:01:00") == 60.0  # naive is UTC
    with pytest.raises(ValueError, match="neither epoch seconds nor ISO 8601"):
        parse_time("yesterday")


TREC_SNIPPET = """<sessiontrack2012>
  <session num="7" starttime="23:59:00.0">
    <topic num="1"><desc>x</desc></topic>
    <interaction num="1" starttime="23:59:10.0"><query>First Q</query>
      <results><result rank="1"><title>t</title></result></results></interaction>
    <interaction num="2" starttime="00:00:20.0"><query>second q</query></interaction>
    <currentquery starttime="00:01:00.0"><query>final q</query></currentquery>
  </session>
</sessiontrack2012>"""


def test_trec_snippet_reads_interactions_then_current_query(tmp_path: Path) -> None:
    path = tmp_path / "t.xml"
    path.write_text(TREC_SNIPPET)
    [(sid, events)] = list(trec_sessions(path))
    assert sid == "7"
    assert [q for _, q in events] == ["First Q", "second q", "final q"]
    times = [t for t, _ in events]
    assert times == sorted(times), "crossing midnight keeps time increasing"


def test_trec_session_2012_file() -> None:
    if not DEFAULT_TREC.exists():
        print(f"skipping: {DEFAULT_TREC} is absent")
        pytest.skip(f"{DEFAULT_TREC} is absent")
    sessions = list(trec_sessions(DEFAULT_TREC))
    assert len(sessions) == 98
    assert sum(len(e) for _, e in sessions) == 297
    assert sessions[0][1][-1][1] == "US tax code 403 (b) eligibility"
