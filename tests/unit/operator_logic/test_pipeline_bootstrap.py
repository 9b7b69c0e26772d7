"""The bootstrap stage of the update pipeline: while no fine-tuned model has been promoted a
run is annotate -> cor-build -> ctr-train -> sft, gated on sft's AEC; its stage is frozen at
run start; a failed step says which stage failed; after the first promotion runs are the
regular cycle. (The pure machine, driven by the scripted Cluster of test_pipeline_machine.)"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from tests.unit.operator_logic.test_pipeline_machine import CFG, Cluster, result

from gqr_operator.pipeline import STEPS, job_name
from gqr_operator.pipeline.config import BOOTSTRAP_STEPS
from gqr_operator.rollout import CreateJob, StartRollout

BOOT = dataclasses.replace(CFG, bootstrap=True)
GATE = {"aec": 0.125, "aec_stable": 0.100, "train_loss": 1.5}


def boot_result(step: str, **extra: Any) -> str:
    doc = json.loads(result(step))
    if step == "sft":
        doc["metrics"] = GATE
    return json.dumps({**doc, **extra})


def bootstrap_run(c: Cluster, annotation: str = "a1") -> list[Any]:
    """Start a run and finish its steps but the last; returns the last step's actions."""
    c.tick()
    actions = c.tick(annotation)
    for step in c.status["steps"][:-1]:
        c.finish(step["name"], boot_result(step["name"]))
        actions = c.tick(annotation)
    return actions


def test_bootstrap_run_is_annotate_cor_ctr_sft_and_sft_gets_the_annotations() -> None:
    c = Cluster(BOOT)
    actions = bootstrap_run(c)
    assert c.status["stage"] == "bootstrap"
    assert c.created == [job_name("followup", s, "1") for s in BOOTSTRAP_STEPS]
    assert [s["name"] for s in c.status["steps"]] == ["annotate", "cor-build", "ctr-train", "sft"]
    (create,) = [a for a in actions if isinstance(a, CreateJob)]
    assert create.step == "sft" and dict(create.inputs) == {
        "base_model": "s3://a/llm/v1",
        "annotations_uri": "s3://a/annotate/7",
        "cor_uri": "s3://a/cor-build/7",
        "ctr_uri": "s3://a/ctr-train/7",
    }
    assert any("bootstrap run 1 started" in e.message and "annotate -> cor-build" in e.message
               for e in c.events)  # fmt: skip


def test_sft_gate_passes_to_the_usual_canary() -> None:
    c = Cluster(BOOT)
    bootstrap_run(c)
    c.finish("sft", boot_result("sft"))
    c.tick("a1")
    assert c.status["phase"] == "Succeeded"
    assert c.rollouts == [StartRollout("sft-7", "s3://a/sft/7", "1")]
    assert c.status["gate"]["aecStable"] == 0.1 and c.status["gate"]["passed"]
    assert c.status["message"].startswith("bootstrap run 1: candidate sft-7")


def test_sft_gate_not_passed_keeps_the_stable() -> None:
    c = Cluster(BOOT)
    bootstrap_run(c)
    c.finish("sft", boot_result("sft", metrics={"aec": 0.1, "aec_stable": 0.1}))
    c.tick("a1")
    assert c.status["phase"] == "NotPromoted" and c.rollouts == []
    assert c.condition("TrainingSucceeded")["reason"] == "GateNotPassed"


def test_sft_without_gate_metrics_fails_the_run_instead_of_promoting() -> None:
    c = Cluster(BOOT)
    bootstrap_run(c)
    c.finish("sft", boot_result("sft", metrics={"train_loss": 1.0}))
    c.tick("a1")
    assert c.status["phase"] == "Failed" and c.rollouts == []
    step = c.status["steps"][-1]
    assert (step["state"], step["reason"]) == ("Failed", "InvalidResult")
    assert "aec or aec_stable" in step["message"]


def test_failed_annotate_names_the_stage_and_the_teacher_and_starts_nothing_else() -> None:
    c = Cluster(BOOT)
    c.tick()
    c.tick("a1")
    why = "TeacherError: teacher http://teacher:8000 refused the API key from Secret t key k"
    failed = json.dumps({"kind": "job_result", "job": "annotate", "status": "failed",
                         "message": why})  # fmt: skip
    c.finish("annotate", failed, failed="BackoffLimitExceeded: Job has reached the limit")
    c.tick("a1")
    assert c.status["phase"] == "Failed" and c.created == ["followup-annotate-1"]
    assert c.rollouts == []
    (event,) = [e for e in c.events if e.reason == "PipelineStepFailed"]
    assert event.type == "Warning"
    assert event.message.startswith("bootstrap run 1: annotate failed (JobFailed)")
    assert "http://teacher:8000" in event.message and "Secret t key k" in event.message
    cond = c.condition("TrainingSucceeded")
    assert (cond["status"], cond["reason"]) == ("False", "StepFailed")
    assert "annotate failed" in cond["message"] and "stable serves" in cond["message"]


def test_stage_is_frozen_at_run_start_and_the_next_run_follows_the_config() -> None:
    c = Cluster(BOOT)
    bootstrap_run(c)
    c.cfg = CFG  # promoted meanwhile: the running bootstrap run keeps its steps
    c.finish("sft", boot_result("sft"))
    c.tick("a1")
    assert c.status["phase"] == "Succeeded" and c.status["stage"] == "bootstrap"
    c.tick("a2")
    assert c.status["stage"] == "regular" and c.status["runId"] == "2"
    assert [s["name"] for s in c.status["steps"]] == list(STEPS)
    assert c.created[-1] == job_name("followup", "cor-build", "2")
    assert "regular run 2 started" in c.status["message"]
