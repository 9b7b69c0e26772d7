"""A Job's result as the Job writes it and the operator reads it back: one model both sides
use, so what a Job can print is exactly what the operator accepts."""

from __future__ import annotations

import json

import pytest

from gqr_contracts.job import InvalidResult, JobResult, parse_termination_message


def test_what_a_job_prints_is_what_the_operator_reads() -> None:
    result = JobResult(
        job="dpo-iterate",
        status="succeeded",
        version="r7",
        artifact_uri="s3://models/llm/r7",
        metrics={"aec": 0.21, "aec_stable": 0.18},
    )
    log_tail = "epoch 3 done\n" + result.to_line() + "\n"
    assert parse_termination_message(log_tail, "dpo-iterate") == result


def test_a_succeeded_result_must_carry_what_the_gate_needs() -> None:
    with pytest.raises(ValueError, match=r"lacks version or metrics \['aec_stable'\]"):
        JobResult(
            job="dpo-iterate",
            status="succeeded",
            version="r7",
            artifact_uri="x",
            metrics={"aec": 1},
        )
    with pytest.raises(ValueError, match="without an artifact_uri"):
        JobResult(job="ctr-train", status="succeeded")
    failed = JobResult(job="dpo-iterate", status="failed", message="OOM")
    assert parse_termination_message(failed.to_line(), "dpo-iterate").message == "OOM"


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ({"kind": "job_result", "job": "ctr-train", "status": "done"}, "status='done'"),
        (
            {
                "kind": "job_result",
                "job": "ctr-train",
                "status": "succeeded",
                "artifact_uri": "x",
                "metrics": {"auc": "high"},
            },
            "metric 'auc'='high' is not a finite number",
        ),
        (
            {"kind": "job_result", "job": "cor-build", "status": "failed"},
            "but this is the ctr-train step",
        ),
        ({"kind": "click"}, "kind='click'"),
    ],
)
def test_the_reader_says_what_is_wrong(doc: dict[str, object], why: str) -> None:
    with pytest.raises(InvalidResult, match=why.replace("[", r"\[")):
        parse_termination_message(json.dumps(doc), "ctr-train")


def test_a_long_message_is_cut_by_the_reader_and_refused_by_the_writer() -> None:
    doc = {"kind": "job_result", "job": "sft", "status": "failed", "message": "x" * 5000}
    assert len(parse_termination_message(json.dumps(doc), "sft").message) == 1024
    with pytest.raises(ValueError, match="1024"):
        JobResult(job="sft", status="failed", message="x" * 5000)
