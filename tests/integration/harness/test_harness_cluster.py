"""The e2e harness's cluster stand-ins against the real control plane: LocalKubelet runs Job
pods as local processes (termination message, PVC -> PV hostPath, failure fallback to logs),
LocalLLMServers serves the operator's LLM Deployment from its PVC behind its Service name,
ConfigMapFile projects a ConfigMap key into a file."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.e2e.harness import (
    ConfigMapFile,
    HostsFile,
    LocalKubelet,
    LocalLLMServers,
    pvc_host_path,
    resolver_installed,
)
from tests.kube_helpers import create_claim, sample_gqrdeployment, wait_for

from gqr_operator.models import parse_spec
from gqr_operator.resources.llm import (
    ModelVersion,
    build_llm_deployment,
    build_llm_service,
    llm_name,
    llm_url,
)
from gqr_serving.backends import GenerationParams, PromptInput
from gqr_serving.backends.tgi import TGIBackend

MANUAL = {"testenv.gqr.dev/complete": "manual"}

WRITE_RESULT = """
import json, os, sys
out, result = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as fh:
    fh.write("data " + os.environ["STEP"])
with open(os.path.join(os.environ["SCRATCH"], "x"), "w") as fh:
    fh.write("scratch")
with open(result, "w") as fh:
    json.dump({"kind": "job_result", "out": out, "home": os.environ["HOME"]}, fh)
"""

FAIL = "import sys; print('boom: bad input', file=sys.stderr); sys.exit(3)"


def _job(name: str, container: dict[str, Any], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": MANUAL},
                "spec": {"restartPolicy": "Never", "containers": [container], "volumes": volumes},
            },
        },
    }


def _job_done(batch: client.BatchV1Api, ns: str, name: str) -> str | None:
    job = batch.read_namespaced_job(name, ns)
    for cond in job.status.conditions or []:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return str(cond.type)
    return None


def _terminated(core: client.CoreV1Api, ns: str, job: str) -> Any:
    pods = core.list_namespaced_pod(ns, label_selector=f"job-name={job}").items
    assert len(pods) == 1, [p.metadata.name for p in pods]
    return pods[0].status.container_statuses[0].state.terminated


@pytest.fixture
def kubelet(
    testenv: Any, kube_client: Any, namespace: str, tmp_path: Path
) -> Iterator[LocalKubelet]:
    kl = LocalKubelet(kube_client, namespace, tmp_path / "kubelet", poll_s=0.3)
    with kl:
        yield kl
    print(kl.logs())


def test_job_pods_run_locally_with_mapped_volumes(
    kubelet: LocalKubelet, kube_client: Any, namespace: str
) -> None:
    core, batch = client.CoreV1Api(kube_client), client.BatchV1Api(kube_client)
    create_claim(kube_client, namespace, "artifacts", "1Mi")
    ok = {
        "name": "step",
        "image": "ghcr.io/gqr-dev/gqr-trainer:never-pulled",
        "command": ["python", "-c", WRITE_RESULT],
        "args": ["/mnt/pvc/artifacts/run1/out.txt", "$(RESULT)"],
        "env": [
            {"name": "RESULT", "value": "/dev/termination-log"},
            {"name": "STEP", "value": "cor-build"},
            {"name": "HOME", "value": "/tmp"},
            {"name": "SCRATCH", "value": "/scratch"},
        ],
        "volumeMounts": [
            {"name": "pvc-artifacts", "mountPath": "/mnt/pvc/artifacts"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "scratch", "mountPath": "/scratch"},
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    volumes = [
        {"name": "pvc-artifacts", "persistentVolumeClaim": {"claimName": "artifacts"}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "scratch", "emptyDir": {}},
    ]
    bad = {
        "name": "step",
        "image": "x",
        "command": ["python", "-c", FAIL],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    batch.create_namespaced_job(namespace, _job("ok", ok, volumes))
    batch.create_namespaced_job(namespace, _job("bad", bad, []))

    host = wait_for(lambda: pvc_host_path(kube_client, namespace, "artifacts"), "PVC bound")
    try:
        assert wait_for(lambda: _job_done(batch, namespace, "ok"), "Job ok done") == "Complete"
        assert wait_for(lambda: _job_done(batch, namespace, "bad"), "Job bad done") == "Failed"

        term = _terminated(core, namespace, "ok")
        assert (term.exit_code, term.reason) == (0, "Completed")
        result = json.loads(term.message)
        run = kubelet.run_of_job("ok")[0]
        # The PVC path is the PV's hostPath, /tmp an emptyDir of this pod; what the process
        # reports names the container's paths again, as it would inside a container.
        assert result["out"] == "/mnt/pvc/artifacts/run1/out.txt"
        assert (host / "run1" / "out.txt").read_text() == "data cor-build"
        assert result["home"] == "/tmp" and Path(run.paths["/tmp"]).is_dir()
        assert (Path(run.paths["/scratch"]) / "x").read_text() == "scratch"

        failed = _terminated(core, namespace, "bad")
        assert (failed.exit_code, failed.reason) == (3, "Error")
        assert "boom: bad input" in failed.message  # FallbackToLogsOnError: the log's tail
    finally:
        shutil.rmtree(host, ignore_errors=True)


def test_configmap_file_follows_the_configmap(
    testenv: Any, kube_client: Any, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(kube_client)
    path = tmp_path / "routing" / "routing.json"
    with ConfigMapFile(kube_client, namespace, "r-routing", "routing.json", path, poll_s=0.2) as cm:
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": "r-routing"}, "data": {"routing.json": '{"v": 1}'}}
        )
        cm.wait_written(timeout=30)
        assert json.loads(path.read_text()) == {"v": 1}
        inode = path.stat().st_ino
        core.patch_namespaced_config_map(
            "r-routing", namespace, {"data": {"routing.json": '{"v": 2}'}}
        )
        wait_for(lambda: json.loads(path.read_text()) == {"v": 2}, "the file updated")
        assert path.stat().st_ino != inode  # replaced atomically, as the kubelet's ..data swap


async def _generate(url: str) -> str:
    backend = TGIBackend(url, transport="http")
    try:
        return await backend.generate(
            PromptInput("what is green tea"), GenerationParams(max_new_tokens=6, temperature=0.0)
        )
    finally:
        await backend.aclose()


def test_llm_servers_serve_the_operators_llm_deployment(
    testenv: Any, kube_client: Any, namespace: str, tmp_path: Path, tiny_lm: Path
) -> None:
    core, apps = client.CoreV1Api(kube_client), client.AppsV1Api(kube_client)
    create_claim(kube_client, namespace, "models", "1Mi")
    host = wait_for(lambda: pvc_host_path(kube_client, namespace, "models"), "PVC bound")
    shutil.copytree(tiny_lm, host / "tiny")
    doc = sample_gqrdeployment()
    doc["spec"]["llm"].update(
        model="pvc://models/tiny", modelStorage={"pvc": {"claimName": "models"}}
    )
    spec, mv = parse_spec(doc["spec"]), ModelVersion("initial", "pvc://models/tiny")
    core.create_namespaced_service(
        namespace, build_llm_service("followup", namespace, mv, "stable")
    )
    apps.create_namespaced_deployment(
        namespace, build_llm_deployment("followup", namespace, spec, mv, "stable")
    )
    name = llm_name("followup", "initial")
    hosts = HostsFile(tmp_path / "hosts.json")
    llms = LocalLLMServers(
        kube_client, namespace, hosts, tmp_path / "llm", instance="followup", poll_s=0.3
    )
    try:
        with llms:
            llms.wait_ready([name], timeout=240)
            server = llms.servers[name]
            assert server.model == host / "tiny"  # MODEL_ID /mnt/pvc/models/tiny, mapped
            url = llm_url("followup", namespace, "initial")
            assert url.split("//")[1].split(":")[0] in hosts.entries()
            with resolver_installed(hosts):  # the URL the routing ConfigMap holds
                text = asyncio.run(_generate(url))
            assert isinstance(text, str) and text.strip()

            apps.delete_namespaced_deployment(name, namespace)
            wait_for(lambda: name not in llms.servers, "the server stopped with its Deployment")
            assert not hosts.entries()
            assert server.proc is not None and server.proc.poll() is not None
    except BaseException:
        print(llms.logs())
        raise
    finally:
        shutil.rmtree(host, ignore_errors=True)
