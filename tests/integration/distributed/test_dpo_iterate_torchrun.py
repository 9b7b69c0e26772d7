"""``dpo-iterate`` under torchrun: 2 processes x 2 pairs per step run the round one process runs
with 4 (rank 0 builds the pairs and measures AEC with the same seeds; every rank trains with
TRL's DPOTrainer under accelerate's DDP): the same pairs, the same AECs, the same final
weights; rank 0 alone writes and reports. A failure on rank 0 while the other rank waits for it
fails the run, reported, without hanging.

Tolerance: weights within 1e-5, AEC within 1e-6. Both runs train on the same pairs in the same
order; they differ only in the order of float32 sums (each rank pads its own pairs; gloo adds
the two halves' gradients): measured 3e-8 to 4e-8; the next AEC is sampled from weights that
close, which draws the same tokens. The same only over whole global batches: accelerate
completes a short last batch with repeated pairs so that every rank has one, so the round here
is half an epoch (``--epochs 0.5``: ceil(n / 4) / 2 steps of 4 pairs, whole batches for any n >=
4 pairs). And pure DPO (``--sft-weight 0``): the RPO term TRL adds is a mean over each rank's
own chosen tokens, which weighs tokens otherwise than one process's mean over all of them
(measured with the default weight 3: 1.7e-3 apart, the size of one step at this learning
rate)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file
from tests.integration.distributed.torchrun import job_results, torchrun
from testsupport.toyworld import dpo_inputs

from gqr_training.align.iterate import main

WEIGHTS_TOL, AEC_TOL = 1e-5, 1e-6
GLOBAL_BATCH = 4


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return dpo_inputs(tmp_path_factory.mktemp("dpo"), 16, 8)


def _args(inputs: dict[str, Path], out: Path, batch: int, ctr: str) -> list[str]:
    return [
        "--model", str(inputs["model"]), "--ctr", ctr,
        "--prompts", str(inputs["train"]), "--test-prompts", str(inputs["test"]),
        "--out", str(out), "--max-iterations", "1", "--delta", "-1",
        "--prompts-per-iteration", "16", "--beam-size", "2", "--candidates", "3",
        "--rejected-budget", "4", "--epochs", "0.5", "--batch-size", str(batch), "--lr", "1e-3",
        "--max-length-gap", "none", "--overlap", "none", "--sft-weight", "0",
        "--version", "v1", "--no-progress",
    ]  # fmt: skip


def test_two_processes_run_the_round_one_process_runs(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scorer = "py:testsupport.toyworld:make_scorer"
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(_args(inputs, one, GLOBAL_BATCH, scorer)) == 0
    [single] = job_results(capsys.readouterr().out)
    pairs = (one / "pairs-1.jsonl").read_text()
    n_pairs = len(pairs.splitlines())
    assert n_pairs >= GLOBAL_BATCH, f"{n_pairs} pairs: less than one global batch"

    done = torchrun("dpo-iterate", _args(inputs, two, GLOBAL_BATCH // 2, scorer))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [result] = job_results(done.stdout)  # rank 0 alone reports
    assert result.status == "succeeded"
    assert Path(result.artifact_uri) == two / "final"
    assert (two / "pairs-1.jsonl").read_text() == pairs
    for key in ("aec", "aec_stable"):
        assert result.metrics[key] == pytest.approx(single.metrics[key], abs=AEC_TOL), key
    report = json.loads((two / "report.json").read_text())
    assert [m["iteration"] for m in report["iterations"]] == [0, 1]
    a = load_file(str(one / "final" / "model.safetensors"))
    b = load_file(str(two / "final" / "model.safetensors"))
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < WEIGHTS_TOL, worst
    print(f"pairs {n_pairs}; max weight difference {worst:.2e}")


def test_a_failure_on_rank_0_fails_the_run(inputs: dict[str, Path], tmp_path: Path) -> None:
    """Rank 0's scorer fails while rank 1 waits for its pairs: the JobResult says so, the
    run exits nonzero (torchrun stops rank 1), and nothing is published."""
    out = tmp_path / "out"
    done = torchrun("dpo-iterate", _args(inputs, out, 2, "py:testsupport.toyworld:no_such"))
    assert done.returncode != 0
    [result] = job_results(done.stdout)
    assert result.status == "failed"
    assert result.message.startswith("rank 0: AttributeError"), result.message
    assert not (out / "final").exists()
