"""Real crashes: writer subprocesses are SIGKILLed mid-stream, or race each other.

Every id a writer printed was acknowledged (printed only after ``write`` returned), so it
must be in the store afterwards.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gqr_serving.logstore import LogReader, LogWriter

SCRIPT = Path(__file__).with_name("logstore_crash_writer.py")
ROOT = Path(__file__).parents[3]  # the writer imports gqr_serving and testsupport


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "serving"), str(ROOT), os.environ.get("PYTHONPATH", "")]
        )
    }
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _kill_after_acks(proc: subprocess.Popen[str], n: int) -> set[str]:
    """Read acks until n arrived, SIGKILL, then collect the acks already printed."""
    assert proc.stdout is not None
    acked: set[str] = set()
    deadline = time.monotonic() + 30
    while len(acked) < n:
        line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"writer exited early (rc={proc.wait()}): {err}")
        acked.add(line.split()[1])
        assert time.monotonic() < deadline, "writer too slow"
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    acked.update(line.split()[1] for line in out.splitlines())
    assert proc.returncode == -signal.SIGKILL
    return acked


def _ids(reader: LogReader) -> list[str]:
    return [r.impression_id for r in reader.read("impression")]


def test_sigkill_loses_no_acknowledged_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    acked = _kill_after_acks(_spawn(str(tmp_path), "victim", "0"), 2000)
    r = LogReader(tmp_path)
    ids = _ids(r)
    assert acked <= set(ids), f"lost {len(acked - set(ids))} acknowledged records"
    assert len(ids) == len(set(ids))
    # A kill inside a large write can leave a torn tail; that is the only damage allowed.
    assert r.stats.skipped_lines == r.stats.torn_lines <= 1

    # Make the torn tail certain (a crash between the write and the newline), then re-read.
    last = max(tmp_path.rglob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    with last.open("ab") as f:
        f.write(b'{"kind": "impression", "impression_id": "torn')
    r = LogReader(tmp_path)
    with caplog.at_level(logging.WARNING, logger="gqr_serving.logstore"):
        assert acked <= set(_ids(r))
    assert r.stats.torn_lines >= 1 and "torn last line" in caplog.text


def test_concurrent_writer_processes_never_interleave(tmp_path: Path) -> None:
    procs = {f"w{k}": _spawn(str(tmp_path), f"w{k}", "1500") for k in range(4)}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.splitlines()[-1] == "ACK DONE", name
    r = LogReader(tmp_path)
    ids = _ids(r)
    assert sorted(ids) == sorted(f"w{k}:{i}" for k in range(4) for i in range(1500))
    assert r.problems == []
    # One writer per file: every line of a segment comes from the writer named in its file.
    for seg in tmp_path.rglob("*.jsonl"):
        owner = seg.name.rsplit("-", 1)[0]
        assert all(f'"impression_id":"{owner}:' in line for line in seg.read_text().splitlines())


def test_sigkill_with_object_storage_recovers_from_staging(tmp_path: Path) -> None:
    root, staging = (tmp_path / "remote").as_uri(), tmp_path / "staging"
    acked = _kill_after_acks(_spawn(root, "victim", "0", str(staging)), 1000)
    # The next writer on this staging folder uploads what the dead one left behind.
    with LogWriter(root, "successor", staging_dir=staging):
        pass
    r = LogReader(root)
    ids = _ids(r)
    assert acked <= set(ids) and len(ids) == len(set(ids))
    assert r.problems == []
    assert not (staging / "victim").exists()
