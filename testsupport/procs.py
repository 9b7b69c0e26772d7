"""Real components as subprocesses on free loopback ports: start them, wait until they answer,
stop or kill them (each in its own session, children included)."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]


def free_port(address: str = "127.0.0.1") -> int:
    """A port free on ``address`` right now."""
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def http_ok(host: str, port: int, path: str = "/health", timeout: float = 1.0) -> bool:
    """True when GET answers 200 (no proxy settings apply, unlike urllib)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"port {port} not open after {timeout}s")


def start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the server and its children
        proc.wait(10)


def stop_process_group(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM a child started with ``start_new_session=True`` and its group, SIGKILL after
    ``grace_s``, and reap it (no ResourceWarning from ``Popen.__del__``)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def testenv_binary(name: str) -> Path:
    """A binary testenv/build.sh builds from pinned Go modules and caches (prometheus, minio,
    ...; built on first use: a few minutes)."""
    out = subprocess.run(
        ["bash", str(ROOT / "testenv" / "build.sh")], stdout=subprocess.PIPE, text=True, check=True
    )
    return Path(out.stdout.strip().splitlines()[-1]) / name


@contextlib.contextmanager
def serving(
    args: list[str],
    log: Path,
    ready_url: str,
    env: dict[str, str] | None = None,
    grace_s: float = 5.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """``args`` started (see :func:`start`) and ready once ``ready_url`` answers (60 s at the
    most); its process group stopped when the block ends."""
    proc = start(args, log, env)
    try:
        wait_http(ready_url, proc, timeout=60)
        yield proc
    finally:
        stop_process_group(proc, grace_s)


def start_ctr_server(
    model_dir: Path, port: int, log: Path, *flags: str, timeout: float = 90.0
) -> subprocess.Popen[bytes]:
    """The real CTR predictor (``gqr_training.ctr.server``, a KServe ModelServer) serving the
    artifact ``model_dir`` as model ``ctr`` on ``port``, with ``flags`` added; returned once
    ``/v1/models/ctr`` answers (killed if it does not within ``timeout`` seconds)."""
    args = [PY, "-m", "gqr_training.ctr.server", "--model_name", "ctr"]
    args += ["--model_dir", str(model_dir), "--http_port", str(port), *flags]
    proc = start(args, log)
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models/ctr", proc, timeout)
    except BaseException:
        kill(proc)
        raise
    return proc
