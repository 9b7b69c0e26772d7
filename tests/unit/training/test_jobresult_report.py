"""Every pipeline entrypoint ends through jobresult.report: the operator depends on its shape."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gqr_contracts.job import JobResult
from gqr_training.jobresult import report


def test_success_is_the_last_line_and_the_result_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "termination-log"
    fields = {"version": "v1", "artifact_uri": "s3://a/v1", "metrics": {"auc": 0.7, "x": math.nan}}
    code = report("ctr-train", lambda: fields, result_file=out)
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == out.read_text()
    result = JobResult.model_validate(json.loads(last))
    assert (result.status, result.version, result.metrics) == ("succeeded", "v1", {"auc": 0.7})
    assert result.started is not None and result.finished is not None


def test_an_exception_is_reported_as_a_failed_result(capsys: pytest.CaptureFixture[str]) -> None:
    def boom() -> dict[str, object]:
        raise FileNotFoundError("no logs under /data/logs")

    assert report("cor-build", boom) == 1
    result = JobResult.model_validate_json(capsys.readouterr().out.strip().splitlines()[-1])
    assert result.status == "failed"
    assert "FileNotFoundError: no logs under /data/logs" in result.message


def test_under_torchrun_rank_0_reports_a_success_and_any_rank_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment torchrun sets: rank 1 of 2 says nothing when the run succeeds (rank 0
    reports it), and reports its own failure, naming itself, with exit status 1."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    out = tmp_path / "termination-log"
    assert report("ctr-train", lambda: {}, result_file=out) == 0
    assert not out.exists() and capsys.readouterr().out == ""

    def oom() -> dict[str, object]:
        raise MemoryError("CUDA out of memory")

    assert report("ctr-train", oom, result_file=out) == 1
    result = JobResult.model_validate_json(out.read_text())
    assert (result.status, result.message) == ("failed", "rank 1: MemoryError: CUDA out of memory")
