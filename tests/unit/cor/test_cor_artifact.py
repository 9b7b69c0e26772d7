"""Artifact contract: all-or-nothing version folders, CURRENT, version names."""

from __future__ import annotations

from pathlib import Path

import pytest

from gqr_serving.cor.artifact import check_version, list_versions, load_artifact, read_current
from gqr_training.cor.artifact_writer import new_version, publish, write_artifact


def test_write_load_publish(tmp_path: Path) -> None:
    assert read_current(tmp_path) is None and list_versions(tmp_path) == []
    write_artifact(tmp_path, "v1", [("a", "b", 2), ("a", "c", 5)], {"source": {"kind": "t"}})
    assert read_current(tmp_path) is None  # written, not published
    publish(tmp_path, "v1")
    art = load_artifact(tmp_path)
    assert art.version == "v1" and art.successors == {"a": (("c", 5), ("b", 2))}
    assert art.totals == {"a": 7} and art.manifest["source"] == {"kind": "t"}
    assert [p.name for p in (tmp_path / "cor").iterdir() if p.name.startswith(".")] == []


def test_existing_version_is_never_overwritten(tmp_path: Path) -> None:
    write_artifact(tmp_path, "v1", [], {})
    with pytest.raises(FileExistsError, match="already exists"):
        write_artifact(tmp_path, "v1", [], {})


def test_publish_refuses_incomplete_version(tmp_path: Path) -> None:
    (tmp_path / "cor" / "v9").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"v9.*manifest.json"):
        publish(tmp_path, "v9")
    assert list_versions(tmp_path) == []


def test_version_names(tmp_path: Path) -> None:
    assert new_version(tmp_path).startswith("v")
    with pytest.raises(ValueError, match=r"version '\.\./x' is not valid"):
        check_version("../x")
