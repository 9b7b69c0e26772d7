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
from testsupport.toyworld import dpo_inputs

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return dpo_inputs(tmp_path_factory.mktemp("dpo"), 32, 12)


def _cmd(inputs: dict[str, Path], out: Path) -> list[str]:
    return [
        sys.executable, "-m", "gqr_training.align.iterate",
        "--model", str(inputs["model"]),
        "--ctr", "py:testsupport.toyworld:make_scorer",
        "--prompts", str(inputs["train"]), "--test-prompts", str(inputs["test"]),
        "--out", str(out), "--max-iterations", "2", "--delta", "-1",
        "--prompts-per-iteration", "16", "--beam-size", "2", "--candidates", "3",
        "--rejected-budget", "4", "--epochs", "1", "--batch-size", "8", "--lr", "1e-3",
        "--max-length-gap", "none",  # 16 toy prompts: pairs must exist, whatever their lengths
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

    # A finished run asked for more rounds continues from its last one (not from scratch,
    # and not stopped by the cap it was run with before).
    more = [*_cmd(inputs, out), "--max-iterations", "3"]
    done = subprocess.run(more, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "continuing after iteration 2: max_iterations=2 reached, now 3" in done.stdout
    state_after = json.loads(state.read_text())
    assert [m["iteration"] for m in state_after["iterations"]] == [0, 1, 2, 3]
    assert state_after["iterations"][:3] == iters  # the earlier rounds were kept, not redone
    assert state_after["stopped"] == "max_iterations=3 reached"


def _sim_logs(logs: Path, per_day: int) -> Path:
    """Two days (2025-03-01, 02) of the world's annotator traffic in a log store."""
    from gqr_training.cli import main as gqr

    argv = ["sim", "--policy", "annotator", "--days", "2", "--out", str(logs)]
    argv += ["--impressions-per-day", str(per_day), "--start-date", "2025-03-01"]
    assert gqr([*argv, "--eval-requests", "10", "--no-progress"]) == 0
    return logs


def test_dpo_iterate_takes_its_prompts_from_the_log_store(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    """What the operator's Job runs: prompts from a log window (no JSONL files), a result file
    (the termination message) holding the JobResult with the gate's two AECs."""
    logs = _sim_logs(tmp_path / "logs", per_day=300)
    cmd = [a for a in _cmd(inputs, tmp_path / "out") if a]
    i = cmd.index("--prompts")
    cmd[i : i + 4] = ["--logs", str(logs), "--end", "2025-03-03", "--window-days", "2"]
    cmd += ["--max-iterations", "1", "--version", "7", "--result-file", str(tmp_path / "term")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "prompts from 600 impressions" in proc.stderr
    result = json.loads((tmp_path / "term").read_text())
    assert result == json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "succeeded" and result["version"] == "7"
    assert {"aec", "aec_stable"} <= set(result["metrics"])
    assert result["artifact_uri"] == str(tmp_path / "out" / "final")


def test_log_prompts_keep_a_fixed_disjoint_test_set(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from gqr_training.align.logprompts import prompts_from_logs

    logs = _sim_logs(tmp_path / "logs", per_day=400)
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC)
    a = prompts_from_logs(str(logs), start, end, "suggestion", seed=1)
    b = prompts_from_logs(str(logs), start, end, "suggestion", seed=2)
    c = prompts_from_logs(str(logs), datetime(2025, 3, 2, tzinfo=UTC), end, "suggestion")
    assert a.impressions == 800 and a.train and a.test
    assert [r.query for r in a.test] == [r.query for r in b.test]  # the seed shuffles training
    assert {r.query for r in a.test}.isdisjoint(r.query for r in a.train)
    assert {r.query for r in c.test} <= {r.query for r in a.test}  # a shifted window agrees
    with pytest.raises(ValueError, match="no 'hint' impressions"):
        prompts_from_logs(str(logs), start, end, "hint")
