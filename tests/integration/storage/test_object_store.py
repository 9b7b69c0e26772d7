"""The storage layer against a real S3 server (MinIO, built by testenv/build.sh): artifacts
round-trip, list, switch CURRENT atomically, and read models; credentials come only from the
environment a Secret fills, and every failure names the URI."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gqr_serving.storage import ArtifactStore, StorageError, model_dir


@pytest.fixture
def env(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    return s3


def _folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "build" / name
    (folder / "tokenizer").mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"name": name}))
    (folder / "model.bin").write_bytes(name.encode() * 5000)
    (folder / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    return folder


def test_round_trip_listing_and_current(env: Any, tmp_path: Path) -> None:
    root = f"s3://{env.bucket()}/artifacts"
    store = ArtifactStore(root, "llm")
    assert store.current() is None and store.versions() == []
    assert store.publish(_folder(tmp_path, "r1"), "r1") == f"{root}/llm/r1"
    store.publish(_folder(tmp_path, "r2"), "r2", make_current=False)
    assert store.versions() == ["r1", "r2"] and store.current() == "r1"
    local = store.fetch(tmp_path / "cache")
    assert json.loads((local / "config.json").read_text()) == {"name": "r1"}
    assert (local / "tokenizer" / "vocab.txt").read_text() == "a\nb\n"
    assert (local / "model.bin").read_bytes() == (tmp_path / "build/r1/model.bin").read_bytes()
    store.set_current("r2")
    assert ArtifactStore(root, "llm").current() == "r2"
    # A version's URI is a model URI every component reads; it is downloaded once.
    first = model_dir(f"{root}/llm/r2", cache=tmp_path / "models", require=("config.json",))
    stamp = (first / "model.bin").stat().st_mtime_ns
    again = model_dir(f"{root}/llm/r2", cache=tmp_path / "models")
    assert again == first and (again / "model.bin").stat().st_mtime_ns == stamp
    with pytest.raises(StorageError, match=r"llm/r2: the model lacks tokenizer.json"):
        model_dir(f"{root}/llm/r2", cache=tmp_path / "models", require=("tokenizer.json",))


def test_an_upload_cut_short_is_never_read(
    env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Job killed after its files but before the marker (the last object written): the
    version does not exist for readers and CURRENT stays on the last whole one."""
    store = ArtifactStore(f"s3://{env.bucket()}/a", "ctr")
    store.publish(_folder(tmp_path, "v1"), "v1")

    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # the pod dies while writing the marker

    monkeypatch.setattr(store.fs, "pipe_file", killed)
    with pytest.raises(KeyboardInterrupt):
        store.publish(_folder(tmp_path, "v2"), "v2")
    reader = ArtifactStore(store.uri.rsplit("/", 1)[0], "ctr")
    assert reader.fs.exists(f"{reader.base}/v2/model.bin")  # its files are there...
    assert reader.versions() == ["v1"] and reader.current() == "v1"  # ...but it is not
    with pytest.raises(FileNotFoundError, match="v2 is not a complete version"):
        reader.fetch(tmp_path / "cache", "v2")


def test_readers_see_whole_versions_while_a_writer_publishes(env: Any, tmp_path: Path) -> None:
    root = f"s3://{env.bucket()}/cor"
    writer = ArtifactStore(root, "cor")
    writer.publish(_folder(tmp_path, "v00"), "v00")
    seen: list[tuple[str, str]] = []
    stop = threading.Event()

    def read() -> None:
        reader = ArtifactStore(root, "cor")
        while not stop.is_set():
            version = reader.current()
            assert version is not None
            folder = reader.fetch(tmp_path / "cache", version)
            seen.append((version, json.loads((folder / "config.json").read_text())["name"]))

    thread = threading.Thread(target=read)
    thread.start()
    for i in range(1, 8):
        writer.publish(_folder(tmp_path, f"v{i:02d}"), f"v{i:02d}")
    stop.set()
    thread.join()
    assert len({v for v, _ in seen}) > 1 and all(v == name for v, name in seen)


def test_credentials_come_only_from_the_environment(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.bucket()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(StorageError, match=rf"s3://{bucket}/x/ctr: "):
        ArtifactStore(f"s3://{bucket}/x", "ctr").publish(_folder(tmp_path, "v1"), "v1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-" + s3.secret_key)
    with pytest.raises(StorageError, match=rf"s3://{bucket}/x/ctr: .*(Forbidden|denied|signature)"):
        ArtifactStore(f"s3://{bucket}/x", "ctr").publish(_folder(tmp_path, "v1"), "v1")
    with pytest.raises(StorageError, match=rf"s3://{bucket}/m: "):
        model_dir(f"s3://{bucket}/m", cache=tmp_path / "models")


def test_a_missing_bucket_or_a_dead_endpoint_is_named(
    env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StorageError, match=r"s3://no-such-bucket-gqr/a/ctr: not found"):
        ArtifactStore("s3://no-such-bucket-gqr/a", "ctr").publish(_folder(tmp_path, "v1"), "v1")
    with pytest.raises(FileNotFoundError, match="s3://no-such-bucket-gqr/model: no such folder"):
        model_dir("s3://no-such-bucket-gqr/model", cache=tmp_path / "models")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"s3://b/a/ctr: "):
        ArtifactStore("s3://b/a", "ctr").publish(_folder(tmp_path, "v1"), "v1")
    assert time.monotonic() - started < 120  # fails, it does not hang
