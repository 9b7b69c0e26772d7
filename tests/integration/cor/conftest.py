"""Fixtures for COR integration tests: a real milvus-lite folder and a small artifact."""

from __future__ import annotations

from pathlib import Path

import pytest

from gqr_training.cor.artifact_writer import publish, write_artifact
from gqr_training.cor.extract import Transition

ROWS_V1: list[Transition] = [
    ("pocono mountains", "pocono mountains hotels", 3),
    ("pocono mountain resorts", "skytop lodge", 2),
    ("403b retirement plan", "403b contribution limits", 4),
]
ROWS_V2: list[Transition] = [
    ("pocono mountains", "pocono mountains weather", 5),
    ("pocono mountain resorts", "camelback lodge", 2),
    ("403b retirement plan", "roth ira vs 403b", 4),
    ("glass blowing", "glass blowing classes", 2),
]


def make_version(
    root: Path, version: str, rows: list[Transition], *, publish_it: bool = True
) -> None:
    write_artifact(root, version, rows, {"source": {"kind": "test"}})
    if publish_it:
        publish(root, version)


@pytest.fixture
def milvus_uri(tmp_path: Path) -> str:
    return str(tmp_path / "milvus.db")
