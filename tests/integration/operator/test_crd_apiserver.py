"""The CRD generated from the models, in the real apiserver: it stores the model's defaults,
keeps every status field the models describe, refuses a change of spec.task.type, and
`kubectl get gqr` shows the printer columns. (Invalid specs: test_operator_children.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.kube_helpers import GROUP, PLURAL, VERSION, gqrdeployment
from tests.unit.operator.cases import MINIMAL, SAMPLES, Spec, load_sample

from gqr_operator.models import GQRDeploymentStatus, parse_spec


def _prune(value: Any) -> Any:
    """Drop None and empty containers: absent and empty mean the same to both sides."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


SPECS = [MINIMAL, *(load_sample(p)["spec"] for p in SAMPLES)]


@pytest.mark.parametrize("spec", SPECS, ids=["minimal", *(p.stem for p in SAMPLES)])
def test_the_apiserver_stores_the_model_defaults(
    crds: list[str], kube_client: Any, namespace: str, spec: Spec
) -> None:
    api = client.CustomObjectsApi(kube_client)
    created = api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, gqrdeployment("defaults", spec), dry_run="All"
    )
    stored = created["spec"]
    model = parse_spec(spec).model_dump(by_alias=True, exclude_none=True, mode="json")
    assert _prune(stored) == _prune(model)
    assert parse_spec(stored) == parse_spec(spec)


STATUS = {
    "phase": "Canary",
    "observedGeneration": 3,
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Serving",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ],
    "stable": {"version": "v1", "ctr": 0.031, "impressions": 1000, "clicks": 31},
    "canary": {"version": "v2", "weight": 10, "step": 0, "ctr": 0.034},
    "pipeline": {"runId": "r1", "jobs": [{"step": "ctr-train", "metrics": {"auc": 0.7}}]},
    "history": [{"version": "v0", "outcome": "Promoted", "steps": [{"weight": 10}]}],
}


def test_status_is_kept_whole_and_kubectl_shows_the_columns(
    crds: list[str], testenv: Any, kube_client: Any, namespace: str
) -> None:
    api = client.CustomObjectsApi(kube_client)
    api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, gqrdeployment("shown", MINIMAL)
    )
    status = GQRDeploymentStatus.model_validate(STATUS).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "shown", {"status": status}
    )
    # A field the CRD's status schema lacked would have been pruned silently.
    assert (
        api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "shown")["status"]
        == status
    )
    kubectl = [str(Path(testenv.bin_dir) / "kubectl"), "--kubeconfig", testenv.kubeconfig]
    out = subprocess.run(
        [*kubectl, "get", "gqr", "-n", namespace], capture_output=True, text=True, check=True
    ).stdout
    header, row = out.splitlines()
    assert header.split() == [
        "NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "CANARY", "CTR", "STABLE", "CTR", "AGE"
    ]  # fmt: skip
    assert row.split()[:7] == ["shown", "Canary", "v1", "v2", "10", "0.034", "0.031"]


def test_task_type_cannot_change(crds: list[str], kube_client: Any, namespace: str) -> None:
    api = client.CustomObjectsApi(kube_client)
    api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, gqrdeployment("fixed", MINIMAL)
    )
    with pytest.raises(ApiException) as err:
        api.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "fixed", {"spec": {"task": {"type": "completion"}}}
        )
    assert err.value.status == 422, err.value.body
    assert "spec.task.type is immutable" in err.value.body
    api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "fixed", {"spec": {"task": {"numQueries": 5}}}
    )
