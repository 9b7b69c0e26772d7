"""Versioned artifacts on a local disk (a folder or a mounted claim): published whole, CURRENT
switched atomically, a half-written version never read."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from gqr_serving.storage import ArtifactStore, join, model_dir, resolve


def _folder(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "build" / name
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(text.encode() * 100)
    (folder / "sub" / "config.json").write_text(json.dumps({"name": text}))
    return folder


def test_publish_then_current_then_fetch(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "root"), "ctr")
    assert store.current() is None and store.versions() == []
    uri = store.publish(_folder(tmp_path, "a", "one"), "v1")
    assert uri == join(str(tmp_path / "root"), "ctr", "v1")
    assert store.current() == "v1" and store.versions() == ["v1"]
    local = store.fetch(tmp_path / "cache")
    assert json.loads((local / "sub" / "config.json").read_text()) == {"name": "one"}
    store.publish(_folder(tmp_path, "b", "two"), "v2", make_current=False)
    assert store.current() == "v1" and store.versions() == ["v1", "v2"]
    store.set_current("v2")
    assert (store.fetch(tmp_path / "cache") / "weights.bin").read_bytes()[:3] == b"two"


def test_a_version_is_never_written_twice_and_names_are_checked(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path), "cor")
    store.publish(_folder(tmp_path, "a", "one"), "v1")
    with pytest.raises(FileExistsError, match="v1 exists already"):
        store.publish(_folder(tmp_path, "b", "two"), "v1")
    with pytest.raises(ValueError, match=r"version '\.\./x' is not valid"):
        store.publish(_folder(tmp_path, "c", "three"), "../x")


def test_a_half_written_version_is_invisible(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path), "llm")
    store.publish(_folder(tmp_path, "a", "one"), "v1")
    crashed = Path(store.base) / "v2"  # a writer that died before its marker
    crashed.mkdir()
    (crashed / "weights.bin").write_bytes(b"half")
    assert store.versions() == ["v1"]
    with pytest.raises(FileNotFoundError, match="v2 is not a complete version"):
        store.set_current("v2")
    with pytest.raises(FileNotFoundError, match="not a complete version"):
        store.fetch(tmp_path / "cache", "v2")


def test_readers_only_ever_see_a_whole_version(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "root"), "cor")
    store.publish(_folder(tmp_path, "v0", "v0"), "v0")
    seen: list[tuple[str, str]] = []
    stop = threading.Event()

    def read() -> None:
        reader = ArtifactStore(str(tmp_path / "root"), "cor")
        while not stop.is_set():
            version = reader.current()
            assert version is not None
            config = reader.fetch(tmp_path / "cache", version) / "sub" / "config.json"
            seen.append((version, json.loads(config.read_text())["name"]))

    thread = threading.Thread(target=read)
    thread.start()
    for i in range(1, 30):
        store.publish(_folder(tmp_path, f"v{i}", f"v{i}"), f"v{i}")
    stop.set()
    thread.join()
    assert seen and all(version == name for version, name in seen)


def test_uri_forms_resolve_to_the_same_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GQR_PVC_ROOT", str(tmp_path / "pvc"))
    (tmp_path / "pvc" / "store" / "models").mkdir(parents=True)
    _, path = resolve("pvc://store/models")
    assert path == str(tmp_path / "pvc" / "store" / "models")
    assert resolve(f"file://{tmp_path}")[1] == str(tmp_path)
    assert model_dir("pvc://store/models") == tmp_path / "pvc" / "store" / "models"
    with pytest.raises(FileNotFoundError, match="pvc://store/nothing: no such folder"):
        model_dir("pvc://store/nothing")
    with pytest.raises(ValueError, match="scheme 'ftp' is not one of pvc, s3, gs, hf, file"):
        resolve("ftp://x/y")


def test_a_bare_name_is_a_folder_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ctr-train --out ctr` writes ./ctr/<version>, not /ctr/<version>."""
    monkeypatch.chdir(tmp_path)
    store = ArtifactStore.at("ctr")
    assert Path(store.uri) == tmp_path / "ctr"
    assert Path(store.version_uri("1")) == tmp_path / "ctr" / "1"
