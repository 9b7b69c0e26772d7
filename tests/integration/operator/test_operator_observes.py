"""The operator, run by kopf's KopfRunner against the real apiserver, observes a GQRDeployment."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client
from tests.kube_helpers import GROUP, PLURAL, VERSION, sample_gqrdeployment, wait_for


@pytest.fixture
def kubeconfig_env(testenv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", testenv.kubeconfig)


def test_operator_sets_observed_generation_and_ready(
    crds: list[str], kube_client: Any, namespace: str, kubeconfig_env: None
) -> None:
    api = client.CustomObjectsApi(kube_client)
    body = copy.deepcopy(sample_gqrdeployment())
    body["metadata"]["name"] = "skeleton"
    args = ["run", "--standalone", "--namespace", namespace, "-m", "gqr_operator.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

        def observed(generation: int) -> dict[str, Any] | None:
            obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "skeleton")
            status = obj.get("status", {})
            ready = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
            if status.get("observedGeneration") == generation and ready:
                return ready[0]
            return None

        ready = wait_for(lambda: observed(1), "observedGeneration 1 and Ready", timeout=30)
        assert ready["observedGeneration"] == 1

        api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "skeleton",
            {"spec": {"task": {"numQueries": 4}}},
        )
        wait_for(lambda: observed(2), "observedGeneration 2 after a spec change", timeout=30)

    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
