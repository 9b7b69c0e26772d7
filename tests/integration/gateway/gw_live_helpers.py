"""Start the real components as subprocesses on free loopback ports, and wait for them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def build_ctr_artifact(out: Path) -> Path:
    """A real (random-init, tiny) CTR artifact the kserve server can load."""
    from gqr_training.ctr.model import CTRConfig, CTRModel, tiny_backbone_config
    from gqr_training.ctr.tokenization import train_wordpiece

    texts = ["what is green tea", "green tea benefits", "matcha vs green tea", "rome hotels"] * 5
    tok = train_wordpiece(texts, 200)
    backbone = tiny_backbone_config(
        "bert", len(tok), int(tok.pad_token_id), hidden=32, layers=1, heads=2, intermediate=64
    )
    CTRModel(CTRConfig(backbone="bert", variant="ctx", backbone_config=backbone)).save(out)
    tok.save_pretrained(str(out / "tokenizer"))
    return out


def publish_cor(root: Path) -> None:
    from gqr_training.cor.artifact_writer import publish, write_artifact

    rows = [
        ("what is green tea", "green tea benefits", 9),
        ("what is green tea", "matcha vs green tea", 5),
        ("what is green tea", "green tea caffeine", 4),
        ("what is green tea", "how to brew green tea", 2),
        ("rome weather", "rome hotels", 3),
        ("rome weather", "rome in may", 2),
        ("rome weather", "rome weather october", 1),
    ]
    write_artifact(root, "v1", rows, {})
    publish(root, "v1")
