"""Runs the helm binary that testenv/build.sh builds (or $GQR_HELM) on the chart in charts/."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "gqr-operator"
CI_VALUES = CHART / "ci"
# Helm built from source defaults to Kubernetes v1.20 for `template`; render for the version
# the test control plane runs (the chart's kubeVersion needs >= 1.27).
KUBE_VERSION = "1.36.3"


@functools.cache
def helm_bin() -> str:
    """$GQR_HELM, then the testenv's cached binaries (built once by testenv/build.sh)."""
    if os.environ.get("GQR_HELM"):
        return os.environ["GQR_HELM"]
    out = subprocess.run(
        ["bash", str(ROOT / "testenv" / "build.sh")],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout
    helm = Path(out.strip().splitlines()[-1]) / "helm"
    if not helm.exists():
        found = shutil.which("helm")
        assert found, f"no helm binary: {helm} is missing and none is on PATH (set GQR_HELM)"
        return found
    return str(helm)


def helm(*args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    """Runs helm; on failure the assertion shows its stderr."""
    proc = subprocess.run(
        [helm_bin(), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, f"helm {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}"
    return proc.stdout + proc.stderr if not check else proc.stdout


def render(
    values: str | None = None,
    *sets: str,
    release: str = "gqr",
    namespace: str = "gqr-system",
) -> list[dict[str, Any]]:
    """`helm template` with a ci/ values file (by stem, e.g. "peering") and --set flags."""
    args = ["template", release, str(CHART), "-n", namespace, "--kube-version", KUBE_VERSION]
    if values:
        args += ["-f", str(CI_VALUES / f"{values}-values.yaml")]
    for s in sets:
        args += ["--set", s]
    return [d for d in yaml.safe_load_all(helm(*args)) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def ci_values() -> list[str]:
    return sorted(p.name.removesuffix("-values.yaml") for p in CI_VALUES.glob("*-values.yaml"))
