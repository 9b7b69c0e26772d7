"""A reader skips and reports every line it cannot trust, with file and line, and goes on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from logstore_factories import impression

from gqr_serving.logstore import LogReader, LogWriter


def _store_with(tmp_path: Path, *bad_lines: bytes) -> Path:
    with LogWriter(tmp_path, "w") as w:
        w.write(impression(1))
    seg = tmp_path / "impression" / "2024-05-01" / "w-00000001.jsonl"
    good_after = impression(2).model_dump_json().encode() + b"\n"
    with seg.open("ab") as f:
        f.write(b"".join(line + b"\n" for line in bad_lines) + good_after)
    return seg


@pytest.mark.parametrize(
    ("line", "counter", "reason"),
    [
        (b'{"kind": "impression", "impr', "bad_json", "not JSON"),
        (b"[1, 2]", "bad_json", "not an object"),
        (b'{"kind": "impression", "impression_id": "x"}', "bad_schema", "ts: Field required"),
        (b'{"kind": "click", "impression_id": "x"}', "bad_schema", "'click' record in"),
        (b'{"impression_id": "caf\xe9"}', "non_utf8", "not UTF-8 at offset 22"),
        (b"", "bad_json", "not JSON"),
    ],
)
def test_a_malformed_line_is_reported_with_file_and_line_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, line: bytes, counter: str, reason: str
) -> None:
    seg = _store_with(tmp_path, line)
    r = LogReader(tmp_path)
    with caplog.at_level(logging.WARNING, logger="gqr_serving.logstore"):
        ids = [x.impression_id for x in r.read("impression")]
    assert ids == ["imp-1", "imp-2"]
    assert getattr(r.stats, counter) == 1 and r.stats.skipped_lines == 1
    (problem,) = r.problems
    assert (Path(problem.file), problem.line) == (seg, 2)
    assert reason in problem.reason
    assert f"{seg}:2:" in caplog.text


def test_an_unknown_schema_version_is_reported_not_guessed(tmp_path: Path) -> None:
    v2 = json.loads(impression(9).model_dump_json()) | {"schema_version": 2}
    v2_new_field = v2 | {"new_field": 1}
    _store_with(tmp_path, json.dumps(v2).encode(), json.dumps(v2_new_field).encode())
    r = LogReader(tmp_path)
    assert [x.impression_id for x in r.read("impression")] == ["imp-1", "imp-2"]
    assert r.stats.unknown_schema_version == 2
    assert [p.line for p in r.problems] == [2, 3]
    assert "schema_version 2 is unknown" in r.problems[0].reason


def test_a_torn_last_line_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with LogWriter(tmp_path, "w") as w:
        w.write_many([impression(1), impression(2)])
    seg = tmp_path / "impression" / "2024-05-01" / "w-00000001.jsonl"
    with seg.open("ab") as f:
        f.write(impression(3).model_dump_json().encode()[:40])
    r = LogReader(tmp_path)
    with caplog.at_level(logging.WARNING, logger="gqr_serving.logstore"):
        assert [x.impression_id for x in r.read("impression")] == ["imp-1", "imp-2"]
    assert r.stats.torn_lines == 1
    assert r.problems[0].line == 3 and "torn last line" in caplog.text


def test_a_complete_record_without_its_newline_counts_as_torn(tmp_path: Path) -> None:
    # The newline is the commit mark: without it the write never returned, so never acked.
    with LogWriter(tmp_path, "w") as w:
        w.write(impression(1))
    seg = tmp_path / "impression" / "2024-05-01" / "w-00000001.jsonl"
    with seg.open("ab") as f:
        f.write(impression(2).model_dump_json().encode())
    r = LogReader(tmp_path)
    assert [x.impression_id for x in r.read("impression")] == ["imp-1"]
    assert r.stats.torn_lines == 1


def test_stray_files_and_folders_in_the_store_are_ignored(tmp_path: Path) -> None:
    with LogWriter(tmp_path, "w") as w:
        w.write(impression(1))
    (tmp_path / "impression" / "not-a-day").mkdir()
    (tmp_path / "impression" / "2024-05-01" / "notes.txt").write_text("x")
    (tmp_path / "impression" / "2024-05-01" / ".w-9.jsonl.uploading").write_text("{")
    r = LogReader(tmp_path)
    assert len(list(r.read("impression"))) == 1 and r.problems == []


def test_an_empty_or_missing_store_reads_as_empty(tmp_path: Path) -> None:
    r = LogReader(tmp_path / "nothing-here")
    assert list(r.read("click")) == []
    assert list(r.impressions_with_clicks()) == []
    assert list(r.sessions()) == []
