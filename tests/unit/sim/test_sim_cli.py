"""``gqr sim``: clear argument errors, and a tiny run that prints the three CTRs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gqr_training.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policy", "oracle"], "argument --policy: invalid choice: 'oracle'"),
        (["--policy", "cqr", "--days", "0"], "argument --days: 0 is out of range; expected 1"),
        (["--policy", "cqr", "--days", "two"], "argument --days: 'two' is not an integer"),
        (["--policy", "cqr", "--start-date", "01/02/2025"], "argument --start-date: '01/02/2025'"),
        (["--policy", "cqr", "--impressions-per-day", "-5"], "argument --impressions-per-day"),
    ],
)
def test_bad_arguments_name_the_flag_and_the_value(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["sim", "--out", str(tmp_path), *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_out_must_be_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SystemExit):
        main(["sim", "--policy", "cqr", "--out", str(f)])
    assert "is not a folder" in capsys.readouterr().err


def test_no_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "sim" in capsys.readouterr().err


def test_tiny_run_prints_the_three_ctrs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "sim",
        "--policy",
        "cqr",
        "--days",
        "2",
        "--impressions-per-day",
        "150",
        "--eval-requests",
        "60",
        "--out",
        str(tmp_path / "logs"),
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["impressions"] == 300
    ctr = summary["eval_true_ctr"]
    assert ctr["oracle"] > max(ctr["annotator"], ctr["cqr"])
    assert "<- served" in out
    assert (tmp_path / "logs" / "impression").is_dir()
