"""cor-build: artifact layout, manifest, CURRENT, and the job result as the last line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from testsupport.artifacts import cor_build_tsv, sessions_tsv

from gqr_contracts.job import JobResult
from gqr_serving.cor import list_versions, load_artifact, read_current
from gqr_serving.logstore import LogWriter
from gqr_serving.records import QueryLogRecord
from gqr_training.cor.build import main


def _tsv(tmp_path: Path) -> Path:
    path = tmp_path / "s.tsv"
    rows = ["s1\t0\tA", "s1\t10\tb", "s1\t20\tb", "s1\t5000\tc", "s2\t0\ta", "s2\t5\tB"]
    path.write_text("\n".join(rows) + "\n")
    return path


def _last_result(out: str) -> JobResult:
    return JobResult.model_validate_json(out.strip().splitlines()[-1])


def test_tsv_build_writes_a_published_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "art"
    rc = cor_build_tsv(_tsv(tmp_path), root, "--version", "v1")
    assert rc == 0
    result = _last_result(capsys.readouterr().out)
    assert (result.job, result.status, result.version) == ("cor-build", "succeeded", "v1")
    assert Path(result.artifact_uri) == (root / "cor" / "v1").resolve()
    assert read_current(root) == "v1" and list_versions(root) == ["v1"]
    art = load_artifact(root)
    assert art.successors == {"a": (("b", 2),)}  # gap split dropped b -> c; self b -> b dropped
    assert result.metrics["self_transitions"] == 1 and result.metrics["pairs"] == 1
    manifest = json.loads((root / "cor" / "v1" / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "tsv" and manifest["params"]["max_gap_s"] == 1800.0


def test_no_publish_leaves_current(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, tsv = tmp_path / "art", _tsv(tmp_path)
    cor_build_tsv(tsv, root, "--version", "v1")
    cor_build_tsv(tsv, root, "--version", "v2", "--no-publish", "--max-gap-minutes", "0")
    assert read_current(root) == "v1" and list_versions(root) == ["v1", "v2"]
    assert ("b", "c") in {
        (q, n) for q, s in load_artifact(root, "v2").successors.items() for n, _ in s
    }
    capsys.readouterr()


def test_failure_is_reported_as_last_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = cor_build_tsv(tmp_path / "nope.tsv", tmp_path)
    assert rc == 1
    result = _last_result(capsys.readouterr().out)
    assert result.status == "failed" and "nope.tsv does not exist" in result.message


def test_index_without_uri_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = cor_build_tsv(_tsv(tmp_path), tmp_path, "--index")
    assert rc == 1 and "--index needs --milvus-uri" in _last_result(capsys.readouterr().out).message


def test_logstore_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
    recs = [
        QueryLogRecord(session_id=sid, ts=t0 + timedelta(seconds=i), query=q)
        for sid, qs in (("s1", ["x", "y"]), ("s2", ["x", "y", "z"]))
        for i, q in enumerate(qs)
    ]
    with LogWriter(tmp_path / "logs", "w") as w:
        w.write_many(recs)
    root = tmp_path / "art"
    rc = main(
        [
            "--source",
            "logstore",
            "--input",
            str(tmp_path / "logs"),
            "--artifact-root",
            str(root),
            "--start",
            "2024-05-01",
            "--end",
            "2024-05-02",
        ]
    )
    assert rc == 0 and _last_result(capsys.readouterr().out).metrics["sessions"] == 2
    assert load_artifact(root).successors == {"x": (("y", 2),), "y": (("z", 1),)}


@pytest.mark.parametrize("value", ["-1", "257", "many"])
def test_bad_partitions_are_refused_naming_flag_value_and_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--source", "tsv", "--input", str(_tsv(tmp_path)), "--partitions", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"--partitions {value!r}: expected auto or a whole number 0-256" in err


def test_partitions_flag_reaches_the_collection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--partitions 2 on the real milvus-lite: the collection is split and its searches route."""
    from gqr_serving.cor import MilvusQueryIndex
    from gqr_serving.cor.index import ROUTING_PARTITION

    uri = str(tmp_path / "m.db")
    # 12 known queries (each followed by another in its session)
    sessions = [(f"s{i}", [f"topic {i}", f"topic {i} more"]) for i in range(12)]
    tsv = sessions_tsv(tmp_path / "many.tsv", sessions)
    flags = ["--index", "--milvus-uri", uri, "--encoder", "hashing:16", "--partitions", "2"]
    assert cor_build_tsv(tsv, tmp_path, *flags) == 0
    version = _last_result(capsys.readouterr().out).version
    index = MilvusQueryIndex(uri)
    assert ROUTING_PARTITION in index.client.list_partitions(index.collection_name(version))
    assert index.searcher(version, 16).partitions == 2
    index.close()
