"""``hf://`` through the real ``huggingface_hub`` client (snapshot_download, its cache, its
errors) against a local server speaking the Hub's file API (testsupport.hfhub: the one stand-in,
since the Hub itself is out of reach), serving a tiny model this test builds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from testsupport.artifacts import build_random_gpt2
from testsupport.hfhub import HubServer, hub_server, online

from gqr_serving.storage import StorageError, model_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_gpt2(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def hub(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    with hub_server() as server:
        server.add("gqr-test/tiny", tiny)
        server.add("gqr-test/gated", tiny, token="hf_s3cret")
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        online(monkeypatch)
        yield server


def test_a_hub_model_downloads_once_and_loads(hub: HubServer, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = model_dir("hf://gqr-test/tiny", cache=tmp_path, require=("config.json",))
    assert AutoModelForCausalLM.from_pretrained(folder).config.n_layer == 2
    assert AutoTokenizer.from_pretrained(folder)("hello world")["input_ids"]
    downloads = [r for r in hub.requests if r.startswith("GET /gqr-test/tiny/resolve/")]
    assert model_dir("hf://gqr-test/tiny", cache=tmp_path) == folder
    again = [r for r in hub.requests if r.startswith("GET /gqr-test/tiny/resolve/")]
    assert downloads and again == downloads  # the second call reads the cache


def test_a_gated_model_needs_the_token(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StorageError, match=r"hf://gqr-test/gated: .*401.*no HF_TOKEN given"):
        model_dir("hf://gqr-test/gated", cache=tmp_path)
    monkeypatch.setenv("HF_TOKEN", "hf_s3cret")
    assert (model_dir("hf://gqr-test/gated", cache=tmp_path) / "config.json").exists()


def test_a_missing_model_or_file_is_named(hub: HubServer, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"hf://gqr-test/nothing: .*404"):
        model_dir("hf://gqr-test/nothing", cache=tmp_path)
    with pytest.raises(StorageError, match=r"hf://gqr-test/tiny: the model lacks adapter"):
        model_dir("hf://gqr-test/tiny", cache=tmp_path, require=("adapter_config.json",))
    with pytest.raises(ValueError, match=r"expected hf://<org>/<name>\[@<revision>\]"):
        model_dir("hf://just-a-name", cache=tmp_path)
