"""``dpo-iterate`` survives a SIGKILL: killed after its first iteration checkpoint, the rerun
resumes after iteration 1 and finishes, printing a JobResult as its last stdout line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.unit.align.align_helpers import requests, trained_tiny_model

from gqr_training.align import tinylm
from gqr_training.align.data import request_row, write_jsonl

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("dpo")
    model, tok = trained_tiny_model(d, epochs=4.0)
    tinylm.save(model, tok, d / "sft")
    write_jsonl(d / "train.jsonl", (request_row(r) for r in requests(32, seed=1)))
    write_jsonl(d / "test.jsonl", (request_row(r) for r in requests(12, seed=2)))
    return {"model": d / "sft", "train": d / "train.jsonl", "test": d / "test.jsonl", "dir": d}


def _cmd(inputs: dict[str, Path], out: Path) -> list[str]:
    return [
        sys.executable, "-m", "gqr_training.align.iterate",
        "--model", str(inputs["model"]),
        "--ctr", "py:tests.unit.align.align_helpers:make_scorer",
        "--prompts", str(inputs["train"]), "--test-prompts", str(inputs["test"]),
        "--out", str(out), "--max-iterations", "2", "--delta", "-1",
        "--prompts-per-iteration", "16", "--beam-size", "2", "--candidates", "3",
        "--rejected-budget", "4", "--epochs", "1", "--batch-size", "8", "--lr", "1e-3",
        "--no-progress",
    ]  # fmt: skip


def test_dpo_iterate_resumes_after_sigkill(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    log = (tmp_path / "first.log").open("wb")
    proc = subprocess.Popen(_cmd(inputs, out), cwd=ROOT, env=env, stdout=log, stderr=log)
    state = out / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and len(json.loads(state.read_text())["iterations"]) >= 2:
            break
        time.sleep(0.2)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log.close()
    assert alive, (tmp_path / "first.log").read_text()[-3000:]
    assert (out / "iter-1" / "config.json").exists()

    done = subprocess.run(_cmd(inputs, out), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "resuming after iteration 1" in done.stdout
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["job"] == "dpo-iterate" and result["status"] == "succeeded"
    iters = json.loads(state.read_text())["iterations"]
    assert [m["iteration"] for m in iters] == [0, 1, 2]
    assert (out / "final" / "config.json").exists()
