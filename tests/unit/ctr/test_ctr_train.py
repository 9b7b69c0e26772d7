from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.unit.ctr.synth import logs_and_train_argv

from gqr_contracts.job import JobResult
from gqr_training.ctr.train import main, make_parser

REPO = Path(__file__).resolve().parents[3]


def last_line(out: str) -> JobResult:
    line = out.strip().splitlines()[-1]
    return JobResult.model_validate_json(line)


def test_job_result_is_the_last_stdout_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = logs_and_train_argv(
        tmp_path,
        2,
        150,
        "--epochs",
        "1",
        "--variant",
        "pid",
        "--negative-rate",
        "0.5",
        "--version",
        "v1",
    )
    assert main(argv) == 0
    result = last_line(capsys.readouterr().out)
    assert (result.job, result.status, result.version) == ("ctr-train", "succeeded", "v1")
    assert Path(result.artifact_uri) == (tmp_path / "art" / "v1").resolve()
    assert {"auc", "logloss", "diff_ctr", "ece", "epochs_run"} <= set(result.metrics)
    assert not (tmp_path / "art" / ".checkpoints" / "v1").exists()


def test_failure_is_reported_as_a_failed_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    argv = [
        "--logs",
        str(tmp_path / "empty"),
        "--out",
        str(tmp_path / "art"),
        "--end",
        "2025-03-03",
        "--no-progress",
    ]
    assert main(argv) == 1
    result = last_line(capsys.readouterr().out)
    assert result.status == "failed"
    assert "held-out impressions" in result.message


def test_parser_defaults() -> None:
    args = make_parser().parse_args(["--logs", "l", "--out", "o"])
    assert (args.window_days, args.variant, args.device) == (14, "ctx", "cpu")


def test_resume_after_sigkill_continues_from_the_saved_epoch(tmp_path: Path) -> None:
    argv = logs_and_train_argv(
        tmp_path,
        3,
        400,
        "--epochs",
        "3",
        "--patience",
        "3",
        "--version",
        "r",
        "--resume",
        seed=3,
    )
    cmd = [sys.executable, "-m", "gqr_training.ctr.train", *argv]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / d) for d in ("training", "serving")] + [os.environ.get("PYTHONPATH", "")]
        ),
    }
    state = tmp_path / "art" / ".checkpoints" / "r" / "state.pt"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert state.exists()
    assert not (tmp_path / "art" / "r").exists()  # no artifact from the killed run

    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    resumed = [ln for ln in lines if ln.startswith("resuming at epoch")]
    assert resumed and int(resumed[0].split()[-1]) >= 1
    first_epoch = int(resumed[0].split()[-1]) + 1
    # Only the remaining epochs ran after the resume.
    ran = [ln for ln in lines if ln.startswith("epoch ")]
    assert [int(ln.split(":")[0].split()[1]) for ln in ran] == list(range(first_epoch, 4))
    result = last_line(done.stdout)
    assert result.status == "succeeded"
    assert result.metrics["epochs_run"] == 3.0
