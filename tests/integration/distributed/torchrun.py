"""Run a pipeline step under PyTorch's launcher (``python -m torch.distributed.run``, i.e.
``torchrun``), on CPU with the gloo backend, as the operator's multi-GPU Jobs do on GPUs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gqr_contracts.job import JobResult

ROOT = Path(__file__).resolve().parents[3]
PATHS = ("contracts", "serving", "training", "operator", ".", "testsupport")


def env() -> dict[str, str]:
    """The repository's packages on the path, one thread per process (2 processes share the
    machine), no hub."""
    path = [str(ROOT / p) for p in PATHS] + [os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "PYTHONWARNINGS": "ignore",
    }


def torchrun(step: str, args: list[str], nproc: int = 2) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc-per-node <nproc> -m -- gqr_training.cli <step> <args>``:
    the operator's multi-GPU Job command (``... --no-python -- gqr <step> <args>``) with the
    module for the script (``--``: else torchrun's parser takes ``--logs`` for its
    ``--logs-specs``)."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node", str(nproc), "-m", "--", "gqr_training.cli", step, *args,
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)


def job_results(stdout: str) -> list[JobResult]:
    """Every JobResult line the processes printed."""
    return [
        JobResult.model_validate_json(line)
        for line in stdout.splitlines()
        if line.startswith("{") and '"job_result"' in line
    ]
