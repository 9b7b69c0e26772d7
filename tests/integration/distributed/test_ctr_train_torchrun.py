"""``ctr-train`` under torchrun: 2 processes x batch 32 train the same predictor as 1 process x
batch 64 (dropout off, so both runs are the same computation up to the order of float sums),
and publish one artifact with one JobResult.

The two runs differ only in how float32 sums are ordered (each rank pads its half of a batch to
that half's own longest input; gloo adds the halves' gradients): about 1e-7 per step, which
AdamW's normalised steps carry along without growing them much over this run's steps. So the
weights must agree within 1e-5 (measured: 7e-8 of weights up to 1.0) and the logloss within
2e-6 (measured: 4e-10; a JobResult carries 6 decimals). AUC counts orderings: two near-tied
predictions that swap move it by 1 / (positives x negatives), 6e-5 here (measured: one swap);
5e-4 allows a few."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file
from tests.integration.distributed.torchrun import job_results, torchrun
from tests.unit.ctr.synth import logs_and_train_argv

from gqr_training.ctr.train import main

WEIGHTS_TOL, LOGLOSS_TOL, AUC_TOL = 1e-5, 2e-6, 5e-4


def _argv(tmp: Path, batch: int) -> list[str]:
    argv = logs_and_train_argv(
        tmp, 2, 160, "--epochs", "2", "--patience", "2", "--dropout", "0",
        "--no-user-propensity", "--version", "v1",
    )  # fmt: skip
    return [*argv, "--batch-size", str(batch)]


def test_two_processes_train_what_one_process_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(_argv(one, 64)) == 0
    [single] = job_results(capsys.readouterr().out)

    done = torchrun("ctr-train", _argv(two, 32))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [result] = job_results(done.stdout)  # rank 0 alone reports
    assert done.stdout.strip().splitlines()[-1].startswith("{")
    assert result.status == "succeeded"
    assert Path(result.artifact_uri) == (two / "art" / "v1").resolve()
    assert {p.name for p in (two / "art").iterdir()} <= {"v1", ".checkpoints"}  # no .work
    assert not (two / "art" / ".checkpoints" / "v1").exists()
    assert result.metrics["epochs_run"] == single.metrics["epochs_run"] == 2.0
    assert result.metrics["logloss"] == pytest.approx(single.metrics["logloss"], abs=LOGLOSS_TOL)
    assert result.metrics["auc"] == pytest.approx(single.metrics["auc"], abs=AUC_TOL)

    a = load_file(str(one / "art" / "v1" / "model.safetensors"))
    b = load_file(str(two / "art" / "v1" / "model.safetensors"))
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < WEIGHTS_TOL, worst
