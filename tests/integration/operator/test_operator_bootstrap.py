"""The bootstrap stage against the real apiserver, with the operator as a real process: a
GQRDeployment naming a base model and spec.bootstrap serves it few-shot; a bootstrap run whose
annotate Job reports an unreachable teacher fails with status and an Event naming the stage
and the URL while the stable keeps serving; the next bootstrap run (annotate -> cor-build ->
ctr-train -> sft) passes the gate, canaries and is promoted; the run after that is the
regular cycle and the stable arm is no longer few-shot.

Job pods are completed by the test with the termination message a trainer container would
write (no container runs here; kwok leaves pods labelled testenv.gqr.dev/complete=manual to
us); the teacher is never called (the failing annotate result stands in for its Job). A small
real HTTP server plays the gateway's /v1/stats (StatsServer of test_operator_rollout).
"""

from __future__ import annotations

import json
from typing import Any

from tests.integration.operator.test_operator_rollout import (
    CANDIDATE,
    NAME,
    Cluster,
    StatsServer,
    _doc,
    _into_the_step,
    _result,
    _until,
    operator_process,  # noqa: F401  (fixture)
    stats,  # noqa: F401  (fixture)
)
from tests.kube_helpers import GROUP, PLURAL, VERSION, OperatorProcess, wait_for

TEACHER = "http://teacher.invalid:8000"
BOOTSTRAP = {
    "teacher": {"url": TEACHER, "model": "teacher", "apiKeySecretRef": {"name": "teacher-key"}},
    "annotations": 500,
}
UNREACHABLE = f"TeacherError: teacher {TEACHER} is unreachable: ConnectError: name not resolved"


def _step_result(step: str, status: str = "succeeded", message: str = "") -> str:
    if step in ("cor-build", "ctr-train"):
        return _result(step)
    doc: dict[str, Any] = {"schema_version": 1, "kind": "job_result", "job": step,
                           "status": status, "message": message}  # fmt: skip
    if status == "succeeded":
        version = CANDIDATE if step == "sft" else "boot-annotations"
        metrics = {"aec": 0.21, "aec_stable": 0.11} if step == "sft" else {"usable": 480.0}
        uri = f"s3://artifacts/followup/{'llm' if step == 'sft' else 'annotations'}/{version}"
        doc.update(version=version, artifact_uri=uri, metrics=metrics)
    return json.dumps(doc)


def _steps(st: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["name"], s.get("state", "")) for s in (st.get("pipeline") or {}).get("steps", [])]


def _run(cluster: Cluster, run: str, steps: tuple[str, ...]) -> None:
    for step in steps:
        job = f"{NAME}-{step}-{run}"
        wait_for(lambda j=job: j in cluster.jobs(), f"Job {job}", timeout=60)
        cluster.complete_job_pod(job, _step_result(step))
        _until(cluster, f"{step} Succeeded", lambda s, st=step: (st, "Succeeded") in _steps(s))


def test_bootstrap_from_a_base_model_then_the_regular_cycle(
    operator_process: OperatorProcess,  # noqa: F811
    kube_client: Any,
    namespace: str,
    stats: StatsServer,  # noqa: F811
) -> None:
    cluster = Cluster(kube_client, namespace)
    doc = _doc(stats.url)
    doc["spec"]["llm"]["model"] = "hf://Qwen/Qwen2.5-0.5B-Instruct"
    doc["spec"]["bootstrap"] = BOOTSTRAP
    cluster.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)
    stats.set((0, 0), (0, 0))
    _until(cluster, "the first reconcile", lambda s: bool(s.get("conditions")))
    (arm,) = cluster.routing()["arms"]
    assert (arm["model_version"], arm["few_shot"]) == ("initial", 3)  # day 0: few-shot

    # Run 1: the teacher is unreachable -> the annotate step fails, nothing else starts.
    cluster.annotate("gqr.dev/retrain", "run-1")
    job = f"{NAME}-annotate-1"
    wait_for(lambda: job in cluster.jobs(), f"Job {job}", timeout=60)
    cluster.complete_job_pod(job, _step_result("annotate", "failed", UNREACHABLE))
    failed = _until(
        cluster, "run 1 failed", lambda s: (s.get("pipeline") or {}).get("phase") == "Failed"
    )
    assert failed["pipeline"]["stage"] == "bootstrap"
    assert _steps(failed) == [("annotate", "Failed"), ("cor-build", "Pending"),
                              ("ctr-train", "Pending"), ("sft", "Pending")]  # fmt: skip
    cond = next(c for c in failed["conditions"] if c["type"] == "TrainingSucceeded")
    assert cond["status"] == "False" and "bootstrap run 1: annotate failed" in cond["message"]
    assert TEACHER in cond["message"]
    events = cluster.core.list_namespaced_event(namespace).items
    step_failed = [e.message for e in events if e.reason == "PipelineStepFailed"]
    assert step_failed and "annotate failed" in step_failed[0] and TEACHER in step_failed[0]
    assert cluster.jobs() == [job] and (failed.get("stable") or {}).get("version") in (
        None,
        "initial",
    )

    # Run 2: a bootstrap run in order, the gate passes, the canary is promoted.
    cluster.annotate("gqr.dev/retrain", "run-2")
    _run(cluster, "2", ("annotate", "cor-build", "ctr-train", "sft"))
    _until(cluster, "the canary", lambda s: (s.get("rollout") or {}).get("phase") == "Progressing")
    arms = {a["name"]: a for a in cluster.routing()["arms"]}
    assert arms["stable"].get("few_shot") == 3 and "few_shot" not in arms["canary"]
    _into_the_step(cluster)
    stats.set((40000, 2000), (12000, 900))
    _until(cluster, "step 2", lambda s: (s.get("rollout") or {}).get("weight") == 50)
    _into_the_step(cluster)
    stats.set((60000, 3000), (32000, 2400))
    done = _until(
        cluster, "promotion", lambda s: (s.get("rollout") or {}).get("phase") == "Promoted"
    )
    assert done["stable"]["version"] == CANDIDATE
    wait_for(lambda: all("few_shot" not in a for a in cluster.routing()["arms"]),
             "the promoted arm served without demonstrations", timeout=30)  # fmt: skip

    # Run 3: the regular cycle.
    cluster.annotate("gqr.dev/retrain", "run-3")
    third = _until(cluster, "run 3", lambda s: (s.get("pipeline") or {}).get("runId") == "3")
    assert third["pipeline"]["stage"] == "regular"
    assert [n for n, _ in _steps(third)] == ["cor-build", "ctr-train", "dpo-iterate"]
    wait_for(lambda: f"{NAME}-cor-build-3" in cluster.jobs(), "Job cor-build-3", timeout=60)
    assert not any(j.endswith("annotate-3") for j in cluster.jobs())
