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
