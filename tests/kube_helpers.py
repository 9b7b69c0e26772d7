"""Small helpers for tests against the real apiserver: waiting and applying manifests."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client

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


def gqrdeployment(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A GQRDeployment document named ``name`` with a copy of ``spec``."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GQRDeployment",
        "metadata": {"name": name},
        "spec": copy.deepcopy(spec),
    }


def create_claim(
    api_client: Any,
    namespace: str,
    name: str,
    size: str,
    access_mode: str = "ReadWriteOnce",
    storage_class: str | None = None,
) -> None:
    """A PersistentVolumeClaim (the test provisioner binds every claim to a hostPath PV);
    ``storage_class`` sets storageClassName when given."""
    spec: dict[str, Any] = {
        "accessModes": [access_mode],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    client.CoreV1Api(api_client).create_namespaced_persistent_volume_claim(
        namespace, {"metadata": {"name": name}, "spec": spec}
    )


def sample_gqrdeployment(task: str = "suggestion") -> dict[str, Any]:
    """The sample GQRDeployment of a task from crds/samples (a minimal one if absent)."""
    samples = sorted((ROOT / "crds" / "samples").glob(f"*_{task}.yaml"))
    if samples:
        return load_yaml(samples[0])[0]
    return gqrdeployment("smoke", {"task": {"type": task}})


class OperatorProcess:
    """`gqr-operator` as a child process that a test can SIGKILL and restart."""

    def __init__(
        self,
        namespace: str,
        kubeconfig: str,
        log: Path,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = [
            sys.executable, "-m", "gqr_operator.cli", "-n", namespace, "--liveness", "",
            *(extra or []),
        ]  # fmt: skip
        self.env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "GQR_TICK_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",  # the log is read while the operator runs
            **(env or {}),
        }
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=fh, stderr=fh)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
