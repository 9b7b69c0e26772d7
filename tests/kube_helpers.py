"""Small helpers for tests against the real apiserver: waiting and applying manifests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION, PLURAL = "gqr.dev", "v1alpha1", "gqrdeployments"


def wait_for(
    fn: Callable[[], T | None], what: str, timeout: float = 60.0, every: float = 0.25
) -> T:
    """Polls ``fn`` until it returns something truthy; fails naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except Exception as exc:  # a transient 404/409 while things converge
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def sample_gqrdeployment(task: str = "suggestion") -> dict[str, Any]:
    """The sample GQRDeployment of a task from crds/samples (a minimal one if absent)."""
    samples = sorted((ROOT / "crds" / "samples").glob(f"*_{task}.yaml"))
    if samples:
        return load_yaml(samples[0])[0]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GQRDeployment",
        "metadata": {"name": "smoke"},
        "spec": {"task": {"type": task}},
    }
