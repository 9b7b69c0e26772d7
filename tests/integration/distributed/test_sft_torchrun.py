"""``sft`` under torchrun: 2 processes x 8 rows per step fine-tune the tiny LM one process
fine-tunes with 16 (TRL's SFTTrainer under accelerate's DDP, its loss averaged over the tokens
of both ranks), from rank 0's tokenizer; rank 0 alone saves and reports.

Tolerance: weights within 1e-5 (measured: 2.6e-7), train loss within 1e-4. 32 rows are 2 whole
global batches (accelerate would complete a short last one with repeated rows), so both runs
see the same rows per step; they differ only in the order of float32 sums."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file
from tests.integration.distributed.torchrun import job_results, torchrun
from testsupport.toyworld import sft_rows

from gqr_training.align.data import write_jsonl
from gqr_training.align.sft import main

WEIGHTS_TOL, LOSS_TOL = 1e-5, 1e-4


def _args(data: Path, out: Path, batch: int) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--epochs", "1", "--lr", "3e-3",
            "--batch-size", str(batch), "--version", "v1", "--no-progress"]  # fmt: skip


def test_two_processes_fine_tune_what_one_process_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "sft.jsonl"
    write_jsonl(data, sft_rows(32))
    assert main(_args(data, tmp_path / "one", 16)) == 0
    [single] = job_results(capsys.readouterr().out)

    done = torchrun("sft", _args(data, tmp_path / "two", 8))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [result] = job_results(done.stdout)  # rank 0 alone reports
    assert result.status == "succeeded"
    loss = result.metrics["train_loss"]
    assert loss == pytest.approx(single.metrics["train_loss"], abs=LOSS_TOL)
    a = load_file(str(tmp_path / "one" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "model.safetensors"))
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < WEIGHTS_TOL, worst
    print(f"max weight difference {worst:.2e}")
