"""Multi-node steps: a step whose `nodes` is more than 1 becomes a JobSet running the step's own
pod on that many nodes under torchrun; the operator reads it back like a Job, and a cluster
without JobSet fails the step with a condition naming what to install."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.operator.cases import MINIMAL, patched

from gqr_operator.kube import ApiError
from gqr_operator.models import parse_spec
from gqr_operator.observe import observe_step
from gqr_operator.progress import advance
from gqr_operator.resources.jobs import build_pipeline_job
from gqr_operator.resources.jobset import build_step_workload

INPUTS = {"base_model": "hf://a/b", "ctr_uri": "s3://a/ctr/1", "cor_uri": "s3://a"}
BOOTSTRAP = {"teacher": {"url": "http://t:8000", "model": "t"}}


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_a_step_on_two_nodes_is_a_jobset_of_its_own_pod_under_torchrun() -> None:
    spec = parse_spec(patched(training={"ctr": {"nodes": 2}, "backoffLimit": 3}))
    job = build_pipeline_job("followup", "ns", spec, step="ctr-train", run_id="4")
    js = build_step_workload("followup", "ns", spec, step="ctr-train", run_id="4")

    assert (js["apiVersion"], js["kind"]) == ("jobset.x-k8s.io/v1alpha2", "JobSet")
    assert js["metadata"]["name"] == job["metadata"]["name"] == "followup-ctr-train-4"
    assert js["metadata"]["labels"] == job["metadata"]["labels"]
    s = js["spec"]
    assert s["failurePolicy"] == {"maxRestarts": 3}  # spec.training.backoffLimit, all pods
    assert s["ttlSecondsAfterFinished"] == job["spec"]["ttlSecondsAfterFinished"]
    assert s["network"]["enableDNSHostnames"] is True
    (rjob,) = s["replicatedJobs"]
    assert (rjob["name"], rjob["replicas"]) == ("node", 1)
    inner = rjob["template"]["spec"]
    assert (inner["completionMode"], inner["completions"], inner["parallelism"]) == (
        "Indexed",
        2,
        2,
    )
    assert inner["backoffLimit"] == 0  # one failed rank fails the attempt
    assert inner["activeDeadlineSeconds"] == job["spec"]["activeDeadlineSeconds"]

    # The pod is the Job's pod; only the command, the torchrun env and its port are added.
    pod, job_pod = inner["template"], job["spec"]["template"]
    (c,), (jc,) = pod["spec"]["containers"], job_pod["spec"]["containers"]
    assert c["command"] == ["torchrun", "--no-python", "--", "gqr", "ctr-train"]
    assert c["args"] == jc["args"]
    env = _env(c)
    assert {k: env[k] for k in ("PET_NNODES", "PET_NPROC_PER_NODE", "PET_MASTER_PORT")} == {
        "PET_NNODES": "2",
        "PET_NPROC_PER_NODE": "1",  # 1 GPU per pod by default -> one process each
        "PET_MASTER_PORT": "29500",
    }
    assert env["PET_NODE_RANK"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    # rank 0: pod 0 of Job <jobset>-node-0, under the JobSet's headless Service <jobset>
    assert env["PET_MASTER_ADDR"] == "followup-ctr-train-4-node-0-0.followup-ctr-train-4"
    assert c["ports"] == [{"name": "torchrun", "containerPort": 29500, "protocol": "TCP"}]
    for key in ("command", "env", "ports"):
        c.pop(key), jc.pop(key, None)
    assert pod == job_pod


def test_gpus_per_pod_are_the_processes_per_node() -> None:
    res = {"limits": {"nvidia.com/gpu": "4"}}
    spec = parse_spec(patched(training={"dpo": {"nodes": 3}, "resources": res}))
    js = build_step_workload("x", "ns", spec, step="dpo-iterate", run_id="1", inputs=INPUTS)
    (c,) = js["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"]
    assert (_env(c)["PET_NNODES"], _env(c)["PET_NPROC_PER_NODE"]) == ("3", "4")
    # One launcher: the single-pod `torchrun --standalone --nproc-per-node 4` is replaced.
    assert c["command"] == ["torchrun", "--no-python", "--", "gqr", "dpo-iterate"]


@pytest.mark.parametrize(
    ("sections", "step", "kind"),
    [
        ({}, "ctr-train", "Job"),
        ({"training": {"ctr": {"nodes": 2}}}, "cor-build", "Job"),  # cor-build has no nodes
        ({"training": {"ctr": {"nodes": 2}}}, "dpo-iterate", "Job"),
        ({"training": {"dpo": {"nodes": 2}}}, "dpo-iterate", "JobSet"),
        ({"bootstrap": {**BOOTSTRAP, "sft": {"nodes": 2}}}, "sft", "JobSet"),
        ({"bootstrap": {**BOOTSTRAP, "sft": {"nodes": 2}}}, "annotate", "Job"),
    ],
)
def test_only_the_step_that_asks_for_nodes_changes_kind(
    sections: dict[str, Any], step: Any, kind: str
) -> None:
    spec = parse_spec(patched(**sections))
    inputs = {**INPUTS, "annotations_uri": "s3://a/annotations/1"}
    built = build_step_workload("x", "ns", spec, step=step, run_id="1", inputs=inputs)
    assert built["kind"] == kind
    if kind == "Job":
        assert built == build_pipeline_job("x", "ns", spec, step=step, run_id="1", inputs=inputs)


class FakeKube:
    """Objects by (kind plural, name); the JobSet API may be absent (404 on its paths)."""

    def __init__(self, jobset_api: bool = True) -> None:
        self.jobset_api = jobset_api
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []

    def _check(self, path: str) -> None:
        if "jobset.x-k8s.io" in path and not self.jobset_api:
            raise ApiError(404, "Not Found", '{"message": "the server could not find it"}')

    def request(self, method: str, path: str, **_: Any) -> Any:
        self._check(path)
        return {}

    def get(self, kind: Any, namespace: str, name: str) -> dict[str, Any] | None:
        self._check(kind.path(namespace, name))
        return self.objects.get((kind.plural, name))

    def list(self, kind: Any, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        key, _, value = selector.partition("=")
        return [p for p in self.pods if p["metadata"]["labels"].get(key) == value]

    def create(self, manifest: dict[str, Any]) -> None:
        self._check(manifest["apiVersion"])
        self.created.append(manifest)


def _pod(name: str, index: int, attempt: int, code: int, message: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {
                "jobset.sigs.k8s.io/jobset-name": "x-ctr-train-1",
                "jobset.sigs.k8s.io/restart-attempt": str(attempt),
            },
            "annotations": {"batch.kubernetes.io/job-completion-index": str(index)},
        },
        "status": {
            "containerStatuses": [{"state": {"terminated": {"exitCode": code, "message": message}}}]
        },
    }


def _jobset(cond: str, reason: str, message: str, restarts: int) -> dict[str, Any]:
    return {
        "status": {
            "restarts": restarts,
            "conditions": [{"type": cond, "status": "True", "reason": reason, "message": message}],
        }
    }


def test_the_result_is_rank_zeros_of_the_latest_attempt() -> None:
    kube = FakeKube()
    kube.objects[("jobsets", "x-ctr-train-1")] = _jobset("Completed", "AllJobsCompleted", "", 1)
    kube.pods = [
        _pod("old-0", 0, 0, 1, "oom"),
        _pod("new-1", 1, 1, 0, ""),
        _pod("new-0", 0, 1, 0, '{"kind": "job_result"}'),
    ]
    seen = observe_step(kube, "ns", "x-ctr-train-1", 2)  # type: ignore[arg-type]
    assert (seen.state, seen.termination_message) == ("succeeded", '{"kind": "job_result"}')


def test_a_failed_jobset_names_its_reason_and_the_ranks_that_failed() -> None:
    kube = FakeKube()
    why = "jobset failed due to reaching max number of restarts (first failed job: x-node-0)"
    kube.objects[("jobsets", "x-ctr-train-1")] = _jobset("Failed", "ReachedMaxRestarts", why, 0)
    kube.pods = [_pod("p0", 0, 0, 0, ""), _pod("p1", 1, 0, 3, "loading\nboom: bad shard\n")]
    seen = observe_step(kube, "ns", "x-ctr-train-1", 2)  # type: ignore[arg-type]
    assert seen.state == "failed"
    assert seen.reason == f"ReachedMaxRestarts: {why}; node 1 exited 3: boom: bad shard"


def test_without_jobset_the_step_fails_with_a_condition_naming_it() -> None:
    kube = FakeKube(jobset_api=False)
    spec_doc = patched(training={"ctr": {"nodes": 2}})
    spec = parse_spec(spec_doc)
    body: dict[str, Any] = {
        "apiVersion": "gqr.dev/v1alpha1",
        "kind": "GQRDeployment",
        "metadata": {
            "name": "x",
            "namespace": "ns",
            "uid": "u1",
            "annotations": {"gqr.dev/retrain": "now"},
        },
        "spec": spec_doc,
        "status": {},
    }
    now = datetime(2026, 1, 1, tzinfo=UTC)
    failed = None
    for i in range(6):  # cor-build succeeds, then ctr-train meets the missing JobSet API
        out = advance(kube, body, spec, now + timedelta(minutes=i))  # type: ignore[arg-type]
        body["status"] = copy.deepcopy(out.status)
        if kube.created and kube.created[-1]["kind"] == "Job":
            job = kube.created[-1]["metadata"]["name"]
            kube.objects[("jobs", job)] = {"status": {"conditions": [
                {"type": "Complete", "status": "True"}]}}  # fmt: skip
            kube.pods = [{"metadata": {"labels": {"job-name": job}}, "status": {
                "containerStatuses": [{"state": {"terminated": {"message": (
                    '{"kind": "job_result", "job": "cor-build", "status": "succeeded", '
                    '"version": "1", "artifact_uri": "s3://a/cor/1"}')}}}]}}]  # fmt: skip
        pipe = out.status["pipeline"]
        if pipe.get("phase") == "Failed":
            failed = (pipe, out.conditions)
            break
    assert failed is not None, body["status"]
    pipe, conditions = failed
    step = next(s for s in pipe["steps"] if s["name"] == "ctr-train")
    assert step["state"] == "Failed" and step["reason"] == "EngineNotInstalled"
    (cond,) = [c for c in conditions if c.type == "TrainingSucceeded"]
    assert cond.status == "False"
    assert "ctr-train failed (EngineNotInstalled)" in cond.message
    assert "JobSet (jobset.x-k8s.io/v1alpha2)" in cond.message and "install JobSet" in cond.message
    assert [m["kind"] for m in kube.created].count("JobSet") == 0  # never created, no crash


def test_minimal_spec_runs_every_step_as_one_job() -> None:
    spec = parse_spec(MINIMAL)
    for step in ("cor-build", "ctr-train"):
        assert build_step_workload("x", "ns", spec, step=step, run_id="1")["kind"] == "Job"
