"""Proves the test control plane is real: version, node, CRD validation, Deployments, Jobs, GC."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.kube_helpers import GROUP, PLURAL, ROOT, VERSION, sample_gqrdeployment, wait_for


def pinned_release() -> str:
    gomod = (ROOT / "testenv" / "kube" / "go.mod").read_text()
    match = re.search(r"require k8s\.io/kubernetes (v\d+\.\d+\.\d+)", gomod)
    assert match, "testenv/kube/go.mod does not pin k8s.io/kubernetes"
    return match.group(1)


def test_apiserver_reports_the_pinned_release(kube_client: Any) -> None:
    info = client.VersionApi(kube_client).get_code()
    assert info.git_version == pinned_release()
    assert (int(info.major), int(info.minor.rstrip("+"))) >= (1, 32)


def test_kwok_node_is_ready(kube_client: Any) -> None:
    nodes = client.CoreV1Api(kube_client).list_node().items
    ready = {
        n.metadata.name
        for n in nodes
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
    }
    assert "kwok-node-0" in ready


def test_custom_object_is_schema_validated(
    crds: list[str], kube_client: Any, namespace: str
) -> None:
    api = client.CustomObjectsApi(kube_client)
    bad = copy.deepcopy(sample_gqrdeployment())
    bad["metadata"]["name"] = "bad-task"
    bad["spec"]["task"]["type"] = "horoscope"
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, bad)
    assert err.value.status == 422
    assert "spec.task.type" in err.value.body and "horoscope" in err.value.body

    good = copy.deepcopy(sample_gqrdeployment())
    good["metadata"]["name"] = "good"
    good["spec"]["task"].pop("numQueries", None)
    created = api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, good)
    assert created["spec"]["task"]["numQueries"] == 3  # the schema default was applied


def _deployment(name: str) -> client.V1Deployment:
    labels = {"app": name}
    container = client.V1Container(
        name="main",
        image="registry.invalid/never-pulled:1",  # kwok runs no containers
        resources=client.V1ResourceRequirements(requests={"cpu": "10m", "memory": "16Mi"}),
    )
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container]),
            ),
        ),
    )


def test_deployment_becomes_available_on_the_kwok_node(kube_client: Any, namespace: str) -> None:
    apps = client.AppsV1Api(kube_client)
    apps.create_namespaced_deployment(namespace, _deployment("web"))

    def available() -> bool:
        dep = apps.read_namespaced_deployment("web", namespace)
        conds = {c.type: c.status for c in dep.status.conditions or []}
        return conds.get("Available") == "True" and dep.status.ready_replicas == 2

    wait_for(available, "Deployment web Available with 2 ready replicas", timeout=90)
    pods = client.CoreV1Api(kube_client).list_namespaced_pod(namespace).items
    assert {p.spec.node_name for p in pods} == {"kwok-node-0"}
    assert {p.status.phase for p in pods} == {"Running"}


def test_job_reaches_complete(kube_client: Any, namespace: str) -> None:
    batch = client.BatchV1Api(kube_client)
    container = client.V1Container(name="main", image="registry.invalid/job:1")
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="once"),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(containers=[container], restart_policy="Never")
            ),
        ),
    )
    batch.create_namespaced_job(namespace, job)

    def complete() -> bool:
        status = batch.read_namespaced_job("once", namespace).status
        return any(c.type == "Complete" and c.status == "True" for c in status.conditions or [])

    wait_for(complete, "Job once Complete", timeout=90)
    assert batch.read_namespaced_job("once", namespace).status.succeeded == 1


def test_deleting_an_owner_garbage_collects_its_children(kube_client: Any, namespace: str) -> None:
    core = client.CoreV1Api(kube_client)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    ref = client.V1OwnerReference(
        api_version="v1",
        kind="ConfigMap",
        name="owner",
        uid=owner.metadata.uid,
        block_owner_deletion=True,
        controller=True,
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="child", owner_references=[ref])),
    )
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def child_gone() -> bool:
        try:
            core.read_namespaced_config_map("child", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(child_gone, "the garbage collector to delete the child ConfigMap", timeout=60)
