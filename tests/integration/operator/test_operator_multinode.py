"""A multi-node step on the real apiserver, with JobSet's own CRD installed and the operator as a
real process: spec.training.ctr.nodes=2 makes ctr-train a JobSet; the harness's JobSet stand-in
makes its child Job, the real Job controller its two Indexed pods, and LocalKubelet runs each as
a local `torchrun` with the environment the operator and the engine give it (PET_NNODES,
PET_NODE_RANK from the completion index, PET_MASTER_ADDR/PORT). The two workers rendezvous and
all-reduce over gloo; rank 0's result is the step's result, the run goes on to dpo-iterate,
survives an operator restart while the JobSet runs, and a run whose rank 1 fails is reported
like a failed Job, naming the node and what it said.

The workers run `multinode_stage.py` as `gqr` (the real steps learn torchrun on another
branch); the single-pod steps (cor-build, dpo-iterate) are completed by the test with their
result, as in the other operator tests.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.harness import LocalJobSetController, LocalKubelet
from tests.e2e.harness.jobset import GROUP as JS_GROUP
from tests.e2e.harness.jobset import PLURAL as JS_PLURAL
from tests.e2e.harness.jobset import VERSION as JS_VERSION
from tests.e2e.harness.kubelet import VENV_BIN
from tests.integration.operator.test_operator_rollout import (
    Cluster,
    _result,
    operator_process,  # noqa: F401  (fixture)
)
from tests.integration.operator.test_operator_rollout import _doc as rollout_doc
from tests.kube_helpers import GROUP, PLURAL, VERSION, OperatorProcess, wait_for

NAME = "followup"  # Cluster (test_operator_rollout) reads this GQRDeployment
STAGE = Path(__file__).with_name("multinode_stage.py")
WORKERS = "testenv.gqr.dev/complete=manual,jobset.sigs.k8s.io/jobset-name"


def _doc() -> dict[str, Any]:
    """The rollout test's GQRDeployment with ctr-train on 2 CPU nodes; its gate is out of
    reach, so a run ends at the gate and no rollout starts (its stats URL is never read)."""
    doc = rollout_doc("http://127.0.0.1:9/v1/stats")
    doc["spec"]["training"].update(
        resources={"limits": {"nvidia.com/gpu": 0}},  # CPU workers, gloo
        backoffLimit=0,
        ctr={"nodes": 2},
        gate={"minAecGain": 0.5},
    )
    return doc


@pytest.fixture
def workers(kube_client: Any, namespace: str, tmp_path: Path) -> Iterator[LocalKubelet]:
    """JobSet's stand-in and a LocalKubelet for the JobSet's pods, with `gqr` the stage stub."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "gqr"
    shim.write_text(f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(STAGE)!r}, "
                    "run_name='__main__')\n")  # fmt: skip
    shim.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), str(VENV_BIN), os.environ.get("PATH", os.defpath)])
    controller = LocalJobSetController(kube_client, namespace, poll_s=0.3)
    kubelet = LocalKubelet(
        kube_client,
        namespace,
        tmp_path / "kubelet",
        label_selector=WORKERS,
        max_parallel=2,  # both ranks at once: each waits for the other
        poll_s=0.3,
        extra_env={"PATH": path, "OMP_NUM_THREADS": "1"},
        env_for=controller.env_for,
    )
    with controller, kubelet:
        yield kubelet
    print(kubelet.logs())
    print(f"--- {controller.name} events\n{controller.events_text()}")


def _until(
    cluster: Cluster, what: str, pred: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """Polls status until `pred` holds (an AssertionError from `pred` ends the wait at once)."""
    deadline = time.monotonic() + timeout
    while True:
        st = cluster.status()
        if pred(st):
            return st
        if time.monotonic() > deadline:
            detail = {k: st.get(k) for k in ("pipeline", "conditions")}
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n"
                                 f"status: {json.dumps(detail, indent=1)[:6000]}")  # fmt: skip
        time.sleep(0.5)


def _step(st: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in (st.get("pipeline") or {}).get("steps", []) if s["name"] == name)


def _succeeded(st: dict[str, Any], name: str) -> bool:
    """Whether step `name` succeeded; a failed run ends the wait at once, with its message."""
    pipe = st.get("pipeline") or {}
    assert pipe.get("phase") != "Failed", pipe.get("message")
    return _step(st, name).get("state") == "Succeeded"


def _jobsets(cluster: Cluster) -> list[dict[str, Any]]:
    listed = cluster.api.list_namespaced_custom_object(JS_GROUP, JS_VERSION, cluster.ns, JS_PLURAL)
    return list(listed["items"])


def _single_pod_step(cluster: Cluster, step: str, run: str) -> None:
    job = f"{NAME}-{step}-{run}"
    wait_for(lambda: job in cluster.jobs(), f"Job {job}", timeout=60)
    cluster.complete_job_pod(job, _result(step))


def test_a_two_node_ctr_train_runs_as_a_jobset_and_the_run_goes_on(
    operator_process: OperatorProcess,  # noqa: F811
    workers: LocalKubelet,
    kube_client: Any,
    namespace: str,
) -> None:
    cluster = Cluster(kube_client, namespace)
    cluster.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _doc())
    _until(cluster, "the first reconcile", lambda s: bool(s.get("conditions")))

    # Run 1: cor-build (one pod), ctr-train on two nodes, dpo-iterate (one pod).
    cluster.annotate("gqr.dev/retrain", "run-1")
    _single_pod_step(cluster, "cor-build", "1")
    wait_for(lambda: _jobsets(cluster), "the ctr-train JobSet", timeout=60)
    (js,) = _jobsets(cluster)
    assert js["metadata"]["name"] == f"{NAME}-ctr-train-1"
    owner = js["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("GQRDeployment", NAME)
    assert f"{NAME}-ctr-train-1" not in cluster.jobs()  # a JobSet instead of a Job
    operator_process.restart()  # the run resumes from status: the same JobSet, never a second

    done = _until(
        cluster,
        "ctr-train Succeeded",
        lambda s: _succeeded(s, "ctr-train"),
        timeout=300,
    )
    result = _step(done, "ctr-train")["result"]
    assert result["version"] == "ctr-train-1"
    assert result["metrics"] == {"world_size": 2.0, "rank_sum": 3.0}  # both ranks all-reduced
    ranks = [r for r in workers.runs.values() if r.job == f"{NAME}-ctr-train-1-node-0"]
    assert sorted(r.env["PET_NODE_RANK"] for r in ranks) == ["0", "1"]
    assert {(r.env["PET_NNODES"], r.exit_code) for r in ranks} == {("2", 0)}
    assert ranks[0].argv[1:5] == ["--no-python", "--", "gqr", "ctr-train"]

    _single_pod_step(cluster, "dpo-iterate", "1")
    end = _until(cluster, "run 1 at the gate", lambda s: s["pipeline"]["phase"] == "NotPromoted")
    assert [s["state"] for s in end["pipeline"]["steps"]] == ["Succeeded"] * 3
    assert len(_jobsets(cluster)) == 1

    # Run 2: rank 1 fails -> the JobSet fails -> the step fails like a failed Job.
    workers.extra_env["GQR_STUB_FAIL_RANK"] = "1"
    cluster.annotate("gqr.dev/retrain", "run-2")
    _single_pod_step(cluster, "cor-build", "2")
    failed = _until(
        cluster, "run 2 Failed", lambda s: s["pipeline"]["phase"] == "Failed", timeout=300
    )
    step = _step(failed, "ctr-train")
    assert (step["state"], step["reason"]) == ("Failed", "JobFailed")
    cond = next(c for c in failed["conditions"] if c["type"] == "TrainingSucceeded")
    assert cond["status"] == "False"
    assert "run 2: ctr-train failed (JobFailed)" in cond["message"]
    assert "ReachedMaxRestarts" in cond["message"]
    # torchrun exits 1 when a worker fails; the rank's own failed job_result says why
    assert "node 1 exited 1: boom: rank 1 of 2 could not read its shard" in cond["message"]
    events = cluster.core.list_namespaced_event(namespace).items
    assert any(e.reason == "PipelineStepFailed" and "node 1" in e.message for e in events)
    assert not any(j.endswith("dpo-iterate-2") for j in cluster.jobs())
