"""The operator image's dependency set is complete and torch-free: images/check-deps.sh
installs only `.[operator]` into a fresh venv and runs `gqr-operator --help` plus the handler
imports. (The torch images take minutes; run `images/check-deps.sh NAME` for them by hand.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _env(tmp_path: Path) -> dict[str, str]:
    """This process's environment (pip's settings and cache) minus the dev venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return {**env, "TMPDIR": str(tmp_path), "PYTHON": sys.executable}


def test_operator_extra_runs_the_operator(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(ROOT / "images" / "check-deps.sh"), "operator"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[operator] OK" in proc.stdout
