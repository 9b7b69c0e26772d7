"""A multi-node step on the real apiserver, with JobSet's own CRD installed and the operator as a
real process: spec.training.ctr.nodes=2 makes ctr-train a JobSet; the harness's JobSet stand-in
makes its child Job, the real Job controller its two Indexed pods, and LocalKubelet runs each as
a local `torchrun` with the environment the operator and the engine give it (PET_NNODES,
PET_NODE_RANK from the completion index, PET_MASTER_ADDR/PORT).

Run 1 runs the real `gqr ctr-train` on both nodes: the CRD's default predictor (ALBERT, 2
layers x 64: the CRD sets no encoder size, and ctr-train's own defaults are tiny) for one epoch
on two days of a tiny click log (150 impressions a day, `tests/unit/ctr/synth.py`) that the test
writes to a claim (the test provisioner's hostPath PV) given as spec.logs and spec.artifacts.
The two ranks rendezvous and train one DDP model over gloo; rank 0 publishes one complete
artifact version and reports the step's result, and the run goes on to dpo-iterate. It survives
an operator restart while the JobSet runs. ctr-train records no world size (not in its metrics,
nor in the artifact), so "2 ranks" is shown by the two nodes' torchrun processes: both exit 0,
and rank 0 cannot pass its first collective without rank 1.

Run 2, a run whose rank 1 fails, is reported like a failed Job, naming the node and what it
said. Its workers run the stand-in `multinode_stage.py` as `gqr` (first on their PATH), which
fails on the rank GQR_STUB_FAIL_RANK names: every pod of a JobSet gets the same spec (same logs,
same flags), so nothing makes the real ctr-train fail on one rank only.

cor-build and dpo-iterate (single pods) are completed by the test with their result, as in the
other operator tests: a real dpo-iterate needs a base LLM and cor-build's real COR index (the
e2e test, tests/e2e/test_e2e_loop.py, runs them), minutes more for what this test checks.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.harness import LocalJobSetController, LocalKubelet
from tests.e2e.harness.jobset import GROUP as JS_GROUP
from tests.e2e.harness.jobset import PLURAL as JS_PLURAL
from tests.e2e.harness.jobset import VERSION as JS_VERSION
from tests.e2e.harness.kubelet import VENV_BIN
from tests.e2e.harness.volumes import pvc_host_path
from tests.integration.operator.test_operator_rollout import (
    Cluster,
    _result,
    operator_process,  # noqa: F401  (fixture)
)
from tests.integration.operator.test_operator_rollout import _doc as rollout_doc
from tests.kube_helpers import GROUP, PLURAL, VERSION, OperatorProcess, create_claim, wait_for
from tests.unit.ctr import synth

from gqr_serving.storage.store import ArtifactStore

NAME = "followup"  # Cluster (test_operator_rollout) reads this GQRDeployment
STAGE = Path(__file__).with_name("multinode_stage.py")
WORKERS = "testenv.gqr.dev/complete=manual,jobset.sigs.k8s.io/jobset-name"
PER_DAY = 150  # impressions a day, 2 days: one to train on, the held-out one
# Kept between runs, outside the source trees: the workers' compiled modules (torch & co.) when
# this process writes none (else each torchrun process compiles its imports again), and
# matplotlib's font cache (the pods get no HOME).
CACHE = Path(tempfile.gettempdir()) / f"gqr-multinode-cache-{os.getuid()}"


def _doc() -> dict[str, Any]:
    """The rollout test's GQRDeployment with ctr-train on 2 CPU nodes for one epoch on 2 days of
    logs, logs and artifacts on the claim `store`; its gate is out of reach, so a run ends at
    the gate and no rollout starts (its stats URL is never read)."""
    doc = rollout_doc("http://127.0.0.1:9/v1/stats")
    doc["spec"]["logs"] = {"uri": "pvc://store/logs"}
    doc["spec"]["artifacts"] = {"uri": "pvc://store/artifacts"}
    doc["spec"]["training"].update(
        resources={"limits": {"nvidia.com/gpu": 0}},  # CPU workers, gloo
        backoffLimit=0,
        ctr={"nodes": 2, "windowDays": 2, "epochs": 1},
        gate={"minAecGain": 0.5},
    )
    return doc


@pytest.fixture
def store(kube_client: Any, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The claim `store` (a hostPath PV) with two days of click logs ending 9.5 hours ago:
    ctr-train's window (its --end is now) trains on the first day and holds out the second."""
    create_claim(kube_client, namespace, "store", "1Gi", "ReadWriteMany")
    root: Path = wait_for(
        lambda: pvc_host_path(kube_client, namespace, "store"), "store claim bound", timeout=60
    )
    monkeypatch.setattr(synth, "START", datetime.now(UTC) - timedelta(hours=36))
    synth.write_logs(root / "logs", days=2, per_day=PER_DAY)
    return root


@pytest.fixture
def stage_bin(tmp_path: Path) -> Path:
    """A folder whose `gqr` is the stand-in stage (`multinode_stage.py`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "gqr"
    shim.write_text(f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(STAGE)!r}, "
                    "run_name='__main__')\n")  # fmt: skip
    shim.chmod(0o755)
    return bin_dir


def _cache_env() -> dict[str, str]:
    env = {"MPLCONFIGDIR": str(CACHE / "matplotlib")}
    if sys.pycache_prefix or sys.flags.dont_write_bytecode:
        env["PYTHONPYCACHEPREFIX"] = sys.pycache_prefix or str(CACHE / "pycache")
    return env


def _path(*first: Path) -> str:
    return os.pathsep.join([*map(str, first), str(VENV_BIN), os.environ.get("PATH", os.defpath)])


@pytest.fixture
def workers(kube_client: Any, namespace: str, tmp_path: Path) -> Iterator[LocalKubelet]:
    """JobSet's stand-in and a LocalKubelet for the JobSet's pods, with `gqr` the project's."""
    controller = LocalJobSetController(kube_client, namespace, poll_s=0.3)
    kubelet = LocalKubelet(
        kube_client,
        namespace,
        tmp_path / "kubelet",
        label_selector=WORKERS,
        max_parallel=2,  # both ranks at once: each waits for the other
        poll_s=0.3,
        extra_env={
            "PATH": _path(),
            "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
            **_cache_env(),
        },
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
    store: Path,
    stage_bin: Path,
    workers: LocalKubelet,
    kube_client: Any,
    namespace: str,
) -> None:
    cluster = Cluster(kube_client, namespace)
    cluster.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _doc())
    _until(cluster, "the first reconcile", lambda s: bool(s.get("conditions")))

    # Run 1: cor-build (one pod), the real ctr-train on two nodes, dpo-iterate (one pod).
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
    print(json.dumps(result, indent=1))
    assert result["version"] == "1"
    metrics = result["metrics"]
    assert metrics["epochs_run"] == 1.0
    assert metrics["train_impressions"] == metrics["test_impressions"] == PER_DAY
    assert 0.0 <= metrics["auc"] <= 1.0
    # one artifact version, published whole; CURRENT is not ctr-train's to set (dpo-iterate and
    # the predictor get the version's URI, the rollout's promotion moves CURRENT)
    ctr = ArtifactStore(str(store / "artifacts"), "ctr")
    assert ctr.versions() == ["1"]
    assert ctr.current() is None
    assert (store / "artifacts" / "ctr" / "1" / "model.safetensors").is_file()
    assert result["artifactUri"] == "pvc://store/artifacts/ctr/1"  # the spec's claim, not a path
    # both nodes ran torchrun with the real `gqr ctr-train` and ended well
    ranks = [r for r in workers.runs.values() if r.job == f"{NAME}-ctr-train-1-node-0"]
    assert sorted(r.env["PET_NODE_RANK"] for r in ranks) == ["0", "1"]
    assert {(r.env["PET_NNODES"], r.exit_code) for r in ranks} == {("2", 0)}
    assert {tuple(r.argv[1:5]) for r in ranks} == {("--no-python", "--", "gqr", "ctr-train")}

    _single_pod_step(cluster, "dpo-iterate", "1")
    end = _until(cluster, "run 1 at the gate", lambda s: s["pipeline"]["phase"] == "NotPromoted")
    assert [s["state"] for s in end["pipeline"]["steps"]] == ["Succeeded"] * 3
    assert len(_jobsets(cluster)) == 1

    # Run 2: rank 1 of the stand-in stage fails -> the JobSet fails -> the step fails like a
    # failed Job.
    workers.extra_env.update(PATH=_path(stage_bin), GQR_STUB_FAIL_RANK="1")
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
