"""The chart against the real apiserver: `helm install` brings the operator Deployment to
Available on the kwok node, `helm upgrade` to two peered replicas rolls out, and
`helm uninstall` leaves nothing of the release behind but the kept CRD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client
from tests.kube_helpers import wait_for
from tests.unit.helm.helm_render import CHART, helm

CRD = "gqrdeployments.gqr.dev"


def _helm_env(tmp_path: Path) -> dict[str, str]:
    """Keeps helm's cache/config/data out of the home folder."""
    return {
        f"HELM_{d}_HOME": str(tmp_path / f"helm-{d.lower()}") for d in ("CACHE", "CONFIG", "DATA")
    }


def _adopt_crd(kube_client: Any, release: str, namespace: str) -> None:
    """The `crds` fixture created the CRD outside Helm; mark it as this release's so the chart
    (crds.install=true) takes it over, as it would an earlier release's kept CRD."""
    client.ApiextensionsV1Api(kube_client).patch_custom_resource_definition(
        CRD,
        {
            "metadata": {
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {
                    "meta.helm.sh/release-name": release,
                    "meta.helm.sh/release-namespace": namespace,
                },
            }
        },
    )


def _available(apps: client.AppsV1Api, name: str, namespace: str, replicas: int) -> Any:
    dep = apps.read_namespaced_deployment(name, namespace)
    conds = {c.type: c.status for c in dep.status.conditions or []}
    done = (
        dep.status.observed_generation == dep.metadata.generation
        and conds.get("Available") == "True"
        and dep.status.updated_replicas == replicas
        and dep.status.available_replicas == replicas
        and (dep.status.replicas or 0) == replicas
    )
    return done or dep.status  # the status is shown if it times out


def _left_behind(kube_client: Any, release: str, namespace: str) -> list[str]:
    selector = f"app.kubernetes.io/instance={release}"
    core = client.CoreV1Api(kube_client)
    apps = client.AppsV1Api(kube_client)
    rbac_api = client.RbacAuthorizationV1Api(kube_client)
    custom = client.CustomObjectsApi(kube_client)
    found = []
    listings = {
        "Deployment": apps.list_namespaced_deployment(namespace, label_selector=selector),
        "ReplicaSet": apps.list_namespaced_replica_set(namespace, label_selector=selector),
        "Pod": core.list_namespaced_pod(namespace, label_selector=selector),
        "ServiceAccount": core.list_namespaced_service_account(namespace, label_selector=selector),
        "Service": core.list_namespaced_service(namespace, label_selector=selector),
        "Role": rbac_api.list_namespaced_role(namespace, label_selector=selector),
        "RoleBinding": rbac_api.list_namespaced_role_binding(namespace, label_selector=selector),
        "ClusterRole": rbac_api.list_cluster_role(label_selector=selector),
        "ClusterRoleBinding": rbac_api.list_cluster_role_binding(label_selector=selector),
    }
    for kind, listing in listings.items():
        found += [f"{kind}/{o.metadata.name}" for o in listing.items]
    peerings = custom.list_namespaced_custom_object(
        "kopf.dev", "v1", namespace, "kopfpeerings", label_selector=selector
    )
    found += [f"KopfPeering/{o['metadata']['name']}" for o in peerings["items"]]
    return found


def test_install_upgrade_uninstall(
    crds: list[str], testenv: Any, kube_client: Any, namespace: str, tmp_path: Path
) -> None:
    release = f"r{namespace.removeprefix('t-')}"  # unique: cluster-scoped objects carry it
    name = f"{release}-gqr-operator"
    base = ["--kubeconfig", testenv.kubeconfig, "-n", namespace]
    env = _helm_env(tmp_path)
    apps = client.AppsV1Api(kube_client)
    _adopt_crd(kube_client, release, namespace)

    out = helm("install", release, str(CHART), *base, "--wait", "--timeout", "90s", env=env)
    assert f"kubectl apply -n {namespace} -f" in out  # NOTES: what to apply next
    wait_for(lambda: _available(apps, name, namespace, 1), "operator Available", timeout=60)
    pod_spec = apps.read_namespaced_deployment(name, namespace).spec.template.spec
    assert pod_spec.service_account_name == name
    (role,) = (
        client.RbacAuthorizationV1Api(kube_client)
        .list_namespaced_role(namespace, label_selector=f"app.kubernetes.io/instance={release}")
        .items
    )
    assert role.metadata.name == name

    helm(
        "upgrade", release, str(CHART), *base, "--wait", "--timeout", "90s",
        "--set", "replicas=2", "--set", "peering.enabled=true",
        "--set", "resources.limits.memory=768Mi",
        env=env,
    )  # fmt: skip
    wait_for(lambda: _available(apps, name, namespace, 2), "2 replicas Available", timeout=60)
    container = apps.read_namespaced_deployment(name, namespace).spec.template.spec.containers[0]
    assert container.resources.limits["memory"] == "768Mi"
    assert f"--peering={name}" in container.args
    custom = client.CustomObjectsApi(kube_client)
    assert custom.get_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", name)
    assert client.PolicyV1Api(kube_client).read_namespaced_pod_disruption_budget(name, namespace)
    history = helm("history", release, *base, env=env)
    assert "deployed" in history.splitlines()[-1]

    helm("uninstall", release, *base, "--wait", "--timeout", "90s", env=env)
    wait_for(
        lambda: not _left_behind(kube_client, release, namespace) or None,
        "no objects of the release left",
        timeout=60,
    )
    # crds.keep (the default): the CRD, and so every GQRDeployment, survives the uninstall.
    kept = client.ApiextensionsV1Api(kube_client).read_custom_resource_definition(CRD)
    assert kept.metadata.deletion_timestamp is None
