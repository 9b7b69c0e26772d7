"""The chart's CRD copies are byte copies of crds/ (generated from the spec models);
charts/sync-crds.sh (part of `make crd`) rewrites them and, with --check, fails on drift."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml
from tests.unit.helm.helm_render import CHART, ROOT, by_kind, render

COPIES = CHART / "files" / "crds"
SCRIPT = ROOT / "charts" / "sync-crds.sh"


def test_chart_copies_equal_the_single_source() -> None:
    sources = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    copies = {p.name: p.read_bytes() for p in COPIES.glob("*.yaml")}
    assert sources, "no CRDs in crds/"
    drifted = sorted(n for n in sources.keys() | copies.keys() if sources.get(n) != copies.get(n))
    assert not drifted, f"{drifted} differ from crds/: run `make crd`"


def test_rendered_crd_is_the_source_plus_helm_metadata() -> None:
    (source,) = yaml.safe_load_all((ROOT / "crds" / "gqr.dev_gqrdeployments.yaml").read_text())
    (rendered,) = by_kind(render(None), "CustomResourceDefinition")
    assert rendered["spec"] == source["spec"]
    assert rendered["metadata"]["name"] == source["metadata"]["name"]


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "crds").mkdir()
    (tmp_path / "charts" / "gqr-operator" / "files" / "crds").mkdir(parents=True)
    shutil.copy(SCRIPT, tmp_path / "charts" / "sync-crds.sh")
    for p in (ROOT / "crds").glob("*.yaml"):
        shutil.copy(p, tmp_path / "crds" / p.name)
    return tmp_path / "charts" / "sync-crds.sh"


def _run(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True)


def test_check_fails_on_drift_and_sync_repairs_it(tmp_path: Path) -> None:
    script = _tree(tmp_path)
    assert _run(script, "--check").returncode == 1  # copies missing
    assert _run(script).returncode == 0
    assert _run(script, "--check").returncode == 0
    source = tmp_path / "crds" / "gqr.dev_gqrdeployments.yaml"
    source.write_text(source.read_text() + "# edited\n")
    (tmp_path / "crds" / "extra.yaml").write_text("kind: X\n")
    drift = _run(script, "--check")
    assert drift.returncode == 1
    assert "gqr.dev_gqrdeployments.yaml" in drift.stderr
    assert "extra.yaml" in drift.stderr
    assert "make crd" in drift.stderr
    assert _run(script).returncode == 0
    assert _run(script, "--check").returncode == 0
