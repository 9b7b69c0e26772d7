"""The operator against the real apiserver: samples apply and their children become Available;
spec updates reach the children; hand edits and deletions are repaired; an unchanged spec
causes no writes; deleting the GQRDeployment garbage-collects everything; invalid specs are
rejected by the apiserver with the field named."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.kube_helpers import (
    GROUP,
    PLURAL,
    ROOT,
    VERSION,
    create_claim,
    gqrdeployment,
    load_yaml,
    wait_for,
)
from tests.unit.operator.cases import INVALID

SAMPLES = sorted((ROOT / "crds" / "samples").glob("*.yaml"))
MANAGED = "app.kubernetes.io/managed-by=gqr-operator"


@pytest.fixture
def operator(
    crds: list[str], testenv: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[KopfRunner]:
    monkeypatch.setenv("KUBECONFIG", testenv.kubeconfig)
    args = ["run", "--standalone", "--namespace", namespace, "-m", "gqr_operator.handlers"]
    with KopfRunner(args, timeout=120) as runner:
        yield runner
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output


def _claims(kube_client: Any, namespace: str) -> None:
    """The PersistentVolumeClaims the samples point at (pvc:// URIs): users bring these."""
    for claim in ("gqr-models", "gqr-artifacts", "gqr-logs"):
        create_claim(kube_client, namespace, claim, "10Gi", "ReadWriteMany", storage_class="")


def _create(api: client.CustomObjectsApi, namespace: str, doc: dict[str, Any]) -> None:
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)


def _get(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return obj


def _ready(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    obj = _get(api, namespace, name)
    conds = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
    if conds.get("Ready", {}).get("status") == "True":
        return obj
    return None


def _children(kube_client: Any, namespace: str, name: str) -> dict[str, Any]:
    selector = f"gqr.dev/deployment={name},{MANAGED}"
    apps, core = client.AppsV1Api(kube_client), client.CoreV1Api(kube_client)
    out: dict[str, Any] = {}
    for kind, items in (
        ("Deployment", apps.list_namespaced_deployment(namespace, label_selector=selector).items),
        (
            "StatefulSet",
            apps.list_namespaced_stateful_set(namespace, label_selector=selector).items,
        ),
        ("Service", core.list_namespaced_service(namespace, label_selector=selector).items),
        ("ConfigMap", core.list_namespaced_config_map(namespace, label_selector=selector).items),
        (
            "PodDisruptionBudget",
            client.PolicyV1Api(kube_client)
            .list_namespaced_pod_disruption_budget(namespace, label_selector=selector)
            .items,
        ),
        (
            "NetworkPolicy",
            client.NetworkingV1Api(kube_client)
            .list_namespaced_network_policy(namespace, label_selector=selector)
            .items,
        ),
    ):
        for obj in items:
            out[f"{kind}/{obj.metadata.name}"] = obj
    return out


def _create_samples(api: Any, kube_client: Any, namespace: str) -> list[str]:
    """The claims, then every sample GQRDeployment in ``namespace``: their names."""
    _claims(kube_client, namespace)
    names = []
    for path in SAMPLES:
        doc = load_yaml(path)[0]
        _create(api, namespace, doc)
        names.append(doc["metadata"]["name"])
    return names


def test_every_sample_gets_available_children_owned_by_it(
    operator: KopfRunner, kube_client: Any, namespace: str
) -> None:
    api = client.CustomObjectsApi(kube_client)
    names = _create_samples(api, kube_client, namespace)
    for name in names:
        obj = wait_for(lambda n=name: _ready(api, namespace, n), f"{name} Ready", timeout=90)
        uid = obj["metadata"]["uid"]
        kids = _children(kube_client, namespace, name)
        kinds = {k.split("/")[0] for k in kids}
        assert {
            "Deployment",
            "Service",
            "ConfigMap",
            "PodDisruptionBudget",
            "NetworkPolicy",
        } <= kinds
        for key, child in kids.items():
            refs = child.metadata.owner_references or []
            assert [r.uid for r in refs] == [uid], f"{key} is not owned by {name}"
            assert refs[0].controller is True
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
        assert obj["status"]["phase"] == "Ready"


def _one(kube_client: Any, namespace: str, task: str = "suggestion") -> tuple[str, Any]:
    doc = load_yaml(next(p for p in SAMPLES if p.name.endswith(f"_{task}.yaml")))[0]
    api = client.CustomObjectsApi(kube_client)
    _claims(kube_client, namespace)
    _create(api, namespace, doc)
    name = doc["metadata"]["name"]
    wait_for(lambda: _ready(api, namespace, name), f"{name} Ready", timeout=90)
    return name, api


def test_spec_update_reaches_children_and_hand_edits_are_repaired(
    operator: KopfRunner, kube_client: Any, namespace: str
) -> None:
    name, api = _one(kube_client, namespace)
    apps, core = client.AppsV1Api(kube_client), client.CoreV1Api(kube_client)
    gateway = f"{name}-gateway"
    api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"spec": {"gateway": {"replicas": 3}}}
    )
    wait_for(
        lambda: apps.read_namespaced_deployment(gateway, namespace).spec.replicas == 3,
        "the gateway Deployment to follow spec.gateway.replicas=3",
        timeout=30,
    )
    # Drift: scale by hand, delete a Service, break the routing ConfigMap.
    apps.patch_namespaced_deployment(gateway, namespace, {"spec": {"replicas": 1}})
    routing = next(
        n.split("/")[1]
        for n in _children(kube_client, namespace, name)
        if n.startswith("ConfigMap/") and "routing" in n
    )
    original = core.read_namespaced_config_map(routing, namespace).data
    core.patch_namespaced_config_map(routing, namespace, {"data": {"routing.json": "{}"}})
    core.delete_namespaced_service(gateway, namespace)
    wait_for(
        lambda: apps.read_namespaced_deployment(gateway, namespace).spec.replicas == 3,
        "the hand-scaled gateway to be restored",
        timeout=30,
    )
    wait_for(
        lambda: core.read_namespaced_service(gateway, namespace),
        "the deleted gateway Service to be recreated",
        timeout=30,
    )
    wait_for(
        lambda: core.read_namespaced_config_map(routing, namespace).data == original,
        "the routing ConfigMap to be restored",
        timeout=30,
    )
    json.loads(original["routing.json"])  # still a valid routing document


def test_unchanged_spec_causes_no_writes(
    operator: KopfRunner, kube_client: Any, namespace: str
) -> None:
    name, _ = _one(kube_client, namespace)
    time.sleep(3)  # let the first passes settle

    def versions() -> dict[str, Any]:
        out = {}
        for key, obj in _children(kube_client, namespace, name).items():
            # Deployments' status is written by the controllers; their generation moves only
            # when someone (the operator) writes the spec.
            if key.startswith(("Deployment/", "StatefulSet/")):
                out[key] = obj.metadata.generation
            else:
                out[key] = obj.metadata.resource_version
        return out

    before = versions()
    time.sleep(3 * 2.5)  # at least three timer ticks (GQR_TICK_SECONDS=2 in tests)
    assert versions() == before


def test_deleting_the_gqrdeployment_garbage_collects_children(
    operator: KopfRunner, kube_client: Any, namespace: str
) -> None:
    name, api = _one(kube_client, namespace)
    assert _children(kube_client, namespace, name)
    api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    wait_for(
        lambda: not _children(kube_client, namespace, name),
        "every child to be garbage-collected",
        timeout=60,
    )


@pytest.mark.parametrize(("case", "spec", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_specs_are_rejected_naming_the_field(
    crds: list[str], kube_client: Any, namespace: str, case: str, spec: Any, field: str
) -> None:
    doc = gqrdeployment("invalid", spec)
    api = client.CustomObjectsApi(kube_client)
    with pytest.raises(ApiException) as err:
        # Strict field validation, as kubectl sends it: unknown fields are errors, not pruned.
        api.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, doc, dry_run="All", field_validation="Strict"
        )
    assert err.value.status in (400, 422), err.value.body  # 400: strict decoding (unknown field)
    message = json.loads(err.value.body)["message"].replace("[0]", "").replace("[1]", "")
    assert field in message, f"{case}: {message}"


def test_the_gateway_signing_key_is_made_once_and_mounted(
    operator: KopfRunner, kube_client: Any, namespace: str
) -> None:
    """Every gateway replica signs with one key from a Secret the operator creates once (a
    click landing on another replica is accepted); passes never rewrite it; only the gateway
    pods mount it."""
    name, _ = _one(kube_client, namespace)
    core, apps = client.CoreV1Api(kube_client), client.AppsV1Api(kube_client)
    secret = wait_for(
        lambda: core.read_namespaced_secret(f"{name}-gateway-key", namespace),
        "the signing key Secret",
        timeout=30,
    )
    key = secret.data["key"]
    assert len(key) >= 40 and secret.metadata.owner_references[0].name == name
    time.sleep(5)  # a few passes later: the same key
    assert core.read_namespaced_secret(f"{name}-gateway-key", namespace).data["key"] == key
    pod = apps.read_namespaced_deployment(f"{name}-gateway", namespace).spec.template.spec
    volume = next(v for v in pod.volumes if v.name == "signing-key")
    assert volume.secret.secret_name == f"{name}-gateway-key"
    args = pod.containers[0].args
    mount = next(m for m in pod.containers[0].volume_mounts if m.name == "signing-key")
    assert args[args.index("--secret-key-file") + 1] == f"{mount.mount_path}/key"


def test_every_child_is_admitted_under_the_restricted_pod_security_standard(
    operator: KopfRunner, kube_client: Any, namespace: str
) -> None:
    """In a namespace that enforces the `restricted` Pod Security Standard (the apiserver's
    built-in PodSecurity admission), every sample's pods are admitted: the Deployments and the
    StatefulSet become Available, nothing is refused."""
    core = client.CoreV1Api(kube_client)
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core.patch_namespace(namespace, {"metadata": {"labels": labels}})
    root = client.V1Pod(
        metadata=client.V1ObjectMeta(name="root"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
    )
    with pytest.raises(ApiException) as refused_pod:  # the standard is enforced here
        core.create_namespaced_pod(namespace, root)
    assert refused_pod.value.status == 403 and "violates PodSecurity" in refused_pod.value.body
    api = client.CustomObjectsApi(kube_client)
    names = _create_samples(api, kube_client, namespace)
    for name in names:
        wait_for(lambda n=name: _ready(api, namespace, n), f"{name} Ready", timeout=90)
    refused = [
        f"{e.involved_object.name}: {e.message}"
        for e in core.list_namespaced_event(namespace).items
        if e.reason == "FailedCreate" or "violates PodSecurity" in (e.message or "")
    ]
    assert refused == []


@pytest.fixture
def allow_only_gqr_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chart's allowlist as the operator sees it (set before the operator starts)."""
    monkeypatch.setenv("GQR_ALLOWED_SECRETS", "gqr-*")


def test_a_secret_outside_the_operators_allowlist_is_refused_before_any_child(
    allow_only_gqr_secrets: None, operator: KopfRunner, kube_client: Any, namespace: str
) -> None:
    """With GQR_ALLOWED_SECRETS set (the chart's allowlist), a GQRDeployment naming another
    Secret of the namespace gets Ready=False/NotAllowed naming the field and the Secret, and the
    operator writes nothing that could mount it."""
    from tests.unit.operator.cases import patched

    api = client.CustomObjectsApi(kube_client)
    spec = patched(llm={"model": "hf://a/b", "hfTokenSecretRef": {"name": "team-b-hf"}})
    _create(api, namespace, gqrdeployment("fenced", spec))

    def refused() -> dict[str, Any] | None:
        ready = _condition(_get(api, namespace, "fenced"), "Ready") or {}
        return ready if ready.get("reason") == "NotAllowed" else None

    ready = wait_for(refused, "Ready=False/NotAllowed", timeout=60)
    time.sleep(3)  # a few more passes: still nothing written
    assert ready["status"] == "False"
    assert "spec.llm.hfTokenSecretRef.name='team-b-hf'" in ready["message"]
    assert "GQR_ALLOWED_SECRETS: gqr-*" in ready["message"]
    assert _children(kube_client, namespace, "fenced") == {}


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    conds = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
    return conds.get(kind)


def test_every_placement_and_engine_field_reaches_children_the_apiserver_accepts(
    operator: KopfRunner, kube_client: Any, namespace: str
) -> None:
    """A GQRDeployment setting every placement and engine field on every section: the
    apiserver accepts it (strictly) and every child the operator writes from it (Degraded
    False: no child failed), and the live children carry the fields. The pipeline Jobs, which
    only a run starts, are checked by a server-side dry run (and the InferenceService, whose
    test CRD is open, in the unit tests)."""
    from tests.unit.operator.cases import EVERYTHING, placement
    from tests.unit.operator.children import build_all

    from gqr_operator.models import parse_spec

    api = client.CustomObjectsApi(kube_client)
    api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, gqrdeployment("full", EVERYTHING),
        field_validation="Strict",
    )  # fmt: skip

    def applied() -> dict[str, Any] | None:
        obj = _get(api, namespace, "full")
        degraded = _condition(obj, "Degraded") or {}
        assert degraded.get("reason") != "ChildrenFailed", degraded.get("message")
        if degraded.get("status") != "False":
            raise AssertionError(obj.get("status"))  # shown if it times out
        return obj

    wait_for(applied, "every child applied", timeout=60)
    kids = _children(kube_client, namespace, "full")
    workloads = {k: v for k, v in kids.items() if k.startswith(("Deployment/", "StatefulSet/"))}
    assert len(workloads) == 3, sorted(workloads)  # the LLM server, the gateway, Milvus
    for key, obj in workloads.items():
        component = obj.metadata.labels["app.kubernetes.io/component"]
        team = component  # llm, gateway, milvus: placement(team) of their section
        pod = obj.spec.template.spec
        assert pod.node_selector == placement(team)["nodeSelector"], key
        assert pod.priority_class_name == f"gqr-{team}", key
        assert pod.service_account_name == f"gqr-{team}", key
        assert [s.name for s in pod.image_pull_secrets] == [f"regcred-{team}"], key
        assert pod.affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution
        assert len(pod.topology_spread_constraints) == 2, key
        assert obj.spec.template.metadata.annotations == placement(team)["podAnnotations"], key
    # Children the operator writes later (a run's Jobs; the predictor once a CTR model exists):
    # the apiserver's dry run, strict.
    later = build_all("full", namespace, parse_spec(EVERYTHING))
    batch = client.BatchV1Api(kube_client)
    for job in (m for m in later if m["kind"] == "Job"):
        batch.create_namespaced_job(namespace, job, dry_run="All", field_validation="Strict")
    (isvc,) = (m for m in later if m["kind"] == "InferenceService")
    api.create_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", namespace, "inferenceservices", isvc, dry_run="All"
    )
