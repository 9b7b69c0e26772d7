"""The chart's childImages values reach the children: `helm install` with image overrides
writes them into the operator Deployment's environment, and an operator run with that
environment (in-process: the kwok node runs no containers) builds every child with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client
from tests.integration.helm.test_helm_chart import _adopt_crd, _helm_env
from tests.kube_helpers import GROUP, PLURAL, VERSION, gqrdeployment, wait_for
from tests.unit.helm.helm_render import CHART, CI_VALUES, helm
from tests.unit.operator.cases import MINIMAL


def _workloads(kube_client: Any, namespace: str, name: str) -> list[Any]:
    selector = f"gqr.dev/deployment={name}"
    apps = client.AppsV1Api(kube_client)
    return [
        *apps.list_namespaced_deployment(namespace, label_selector=selector).items,
        *apps.list_namespaced_stateful_set(namespace, label_selector=selector).items,
    ]


def test_installed_child_image_values_are_what_the_children_run(
    crds: list[str],
    testenv: Any,
    kube_client: Any,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = f"i{namespace.removeprefix('t-')}"
    base = ["--kubeconfig", testenv.kubeconfig, "-n", namespace]
    env = _helm_env(tmp_path)
    _adopt_crd(kube_client, release, namespace)
    values = str(CI_VALUES / "child-images-values.yaml")
    helm("install", release, str(CHART), *base, "-f", values, "--timeout", "90s", env=env)
    try:
        operator = client.AppsV1Api(kube_client).read_namespaced_deployment(
            f"{release}-gqr-operator", namespace
        )
        installed = {
            e.name: e.value
            for e in operator.spec.template.spec.containers[0].env
            if e.name.startswith("GQR_IMAGE_")
        }
        assert installed["GQR_IMAGE_GATEWAY"] == "registry.example:5000/team/gqr-gateway:0.2.0-rc1"
        for key, value in installed.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("KUBECONFIG", testenv.kubeconfig)
        api = client.CustomObjectsApi(kube_client)
        args = ["run", "--standalone", "--namespace", namespace, "-m", "gqr_operator.handlers"]
        with KopfRunner(args, timeout=120) as runner:
            api.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, gqrdeployment("mirrored", MINIMAL)
            )
            workloads = wait_for(
                lambda: (w := _workloads(kube_client, namespace, "mirrored")) and len(w) == 3 and w,
                "the LLM server, gateway and Milvus",
                timeout=60,
            )
        assert runner.exception is None, runner.output
    finally:
        helm("uninstall", release, *base, "--timeout", "90s", env=env)
    images = {}
    for w in workloads:
        pod = w.spec.template.spec
        assert [s.name for s in pod.image_pull_secrets] == ["mirror-cred", "other-cred"]
        for c in pod.containers:
            assert c.image_pull_policy == "Always", c.name
            images[w.metadata.labels["app.kubernetes.io/component"]] = c.image
    assert images == {
        "llm": installed["GQR_IMAGE_VLLM"],  # vLLM: the default runtime
        "gateway": "registry.example:5000/team/gqr-gateway:0.2.0-rc1",
        "milvus": "registry.example:5000/milvusdb/milvus:v2.5.14",
    }
