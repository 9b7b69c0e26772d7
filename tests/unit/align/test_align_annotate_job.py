"""``gqr annotate`` as the bootstrap stage's first Job: requests from the log window (the
gate's test tenth left out), rows published as ``<store>/<version>/sft.jsonl``, a JobResult;
and failing fast, naming the teacher's URL and the key's Secret, when the teacher is
unreachable, refuses the key, or the key is missing. The teacher is a local OpenAI-style
stand-in (``teacher`` of test_align_annotate); no LLM runs here."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.unit.align.test_align_annotate import teacher
from testsupport.http_function import FunctionServer
from testsupport.records import impression

from gqr_serving.logstore import LogWriter
from gqr_training.align.data import read_jsonl
from gqr_training.align.logprompts import is_test_query
from gqr_training.cli import main as gqr

SECRET = "Secret teacher-key key apiKey"
KEY = "sk-test-0123456789"


@pytest.fixture
def keyed_teacher() -> Iterator[str]:
    with FunctionServer(teacher, authorization=f"Bearer {KEY}") as server:
        yield f"{server.url}/v1"


@pytest.fixture
def logs(tmp_path: Path) -> str:
    root = tmp_path / "logs"
    now = datetime.now(UTC) - timedelta(hours=1)
    topics = ["green tea", "rome weather", "python list", "kyoto trip", "sourdough", "marathon"]
    queries = [f"{t} {i}" for t in topics for i in range(12)]
    with LogWriter(root, writer_id="t", fsync_interval_s=0.0) as w:
        for i, q in enumerate(queries):
            w.write(impression(f"i{i}", now, q, ["a b", "c d"], session_id=f"s{i}", user_key="u"))
    return str(root)


def _argv(url: str, logs: str, tmp_path: Path, *extra: str) -> list[str]:
    return ["annotate", "--teacher-url", url, "--logs", logs, "--window-days", "2",
            "--out", str(tmp_path / "work" / "7" / "sft.jsonl"), "--publish",
            str(tmp_path / "artifacts" / "annotations"), "--version", "7",
            "--result-file", str(tmp_path / "result.json"), "--no-progress",
            "--api-key-env", "TEACHER_KEY", "--api-key-from", SECRET, *extra]  # fmt: skip


def _result(tmp_path: Path) -> dict[str, object]:
    return dict(json.loads((tmp_path / "result.json").read_text()))


def test_annotates_the_log_window_and_publishes_the_rows(
    keyed_teacher: str, logs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("TEACHER_KEY", KEY)
    assert gqr(_argv(keyed_teacher, logs, tmp_path, "--augment", "0")) == 0
    res = _result(tmp_path)
    assert (res["job"], res["status"], res["version"]) == ("annotate", "succeeded", "7")
    published = tmp_path / "artifacts" / "annotations" / "7"
    assert Path(str(res["artifact_uri"])) == published
    rows = read_jsonl(published / "sft.jsonl")
    asked = [r["prompt"].split("<query>\n", 1)[1].split("\n", 1)[0] for r in rows]
    metrics = dict(res["metrics"])  # type: ignore[call-overload]
    assert len(rows) == metrics["rows"] == metrics["usable"] > 40
    assert not any(is_test_query(q) for q in asked)  # the gate's test prompts stay unseen
    out = capsys.readouterr()
    assert KEY not in out.out + out.err + json.dumps(res)


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_missing_or_refused_key_fails_fast_naming_url_and_secret(
    keyed_teacher: str, logs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    key: str | None,
) -> None:  # fmt: skip
    if key:
        monkeypatch.setenv("TEACHER_KEY", key)
    else:
        monkeypatch.delenv("TEACHER_KEY", raising=False)
    assert gqr(_argv(keyed_teacher, logs, tmp_path)) == 1
    res = _result(tmp_path)
    assert res["status"] == "failed" and keyed_teacher in str(res["message"])
    assert SECRET in str(res["message"])
    assert ("401" in str(res["message"])) == bool(key)
    assert key is None or key not in json.dumps(res)
    assert not (tmp_path / "artifacts" / "annotations" / "7").exists()


def test_unreachable_teacher_fails_fast_naming_the_url(
    logs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("TEACHER_KEY", KEY)
    assert gqr(_argv(url, logs, tmp_path)) == 1
    message = str(_result(tmp_path)["message"])
    assert f"teacher {url} is unreachable" in message


def test_sft_refuses_a_model_without_a_tokenizer_naming_it(tmp_path: Path) -> None:
    from gqr_training.align.sft import model_folder

    model = tmp_path / "base"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(Exception, match=rf"--model {model} has no tokenizer"):
        model_folder(str(model))


def test_sft_reports_the_gate_against_the_few_shot_stable(
    keyed_teacher: str, logs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """annotate -> sft as the bootstrap Jobs chain them (a tiny LM from scratch stands in for
    the base model; the toy world's scorer for the CTR predictor)."""
    monkeypatch.setenv("TEACHER_KEY", KEY)
    assert gqr(_argv(keyed_teacher, logs, tmp_path)) == 0
    annotations = str(_result(tmp_path)["artifact_uri"])
    argv = ["sft", "--data", annotations, "--out", str(tmp_path / "llm-work"),
            "--publish", str(tmp_path / "artifacts" / "llm"), "--version", "7",
            "--epochs", "1", "--ctr", "py:testsupport.toyworld:make_scorer", "--logs", logs,
            "--window-days", "2", "--stable-few-shot", "2", "--test-size", "8",
            "--result-file", str(tmp_path / "result.json"), "--no-progress"]  # fmt: skip
    assert gqr(argv) == 0, _result(tmp_path)
    res = _result(tmp_path)
    metrics = dict(res["metrics"])  # type: ignore[call-overload]
    assert {"aec", "aec_stable", "train_loss"} <= set(metrics)
    assert 0.0 <= metrics["aec_stable"] <= 1.0 and 0.0 <= metrics["aec"] <= 1.0
    published = tmp_path / "artifacts" / "llm" / "7"
    assert Path(str(res["artifact_uri"])) == published
    assert (published / "tokenizer_config.json").exists() and not (published / ".trainer").exists()
