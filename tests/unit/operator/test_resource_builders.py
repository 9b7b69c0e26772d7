"""Property and golden-ish tests of the manifest builders, over every sample."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from tests.unit.operator.cases import MINIMAL, SAMPLES, load_sample, patched
from tests.unit.operator.children import Manifest, build_all, pod_specs

from gqr_operator.models import GQRDeploymentSpec, parse_spec
from gqr_operator.resources.jobs import build_pipeline_job
from gqr_operator.resources.routing import ROUTING_FILE
from gqr_serving.gateway.routing_file import parse_routing

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
SECRETISH = re.compile(r"(^|_)(TOKEN|PASSWORD|SECRET|ACCESS_KEY|CREDENTIALS?)($|_)", re.IGNORECASE)
LONG_NAME = "a" * 40 + "." + "b" * 200  # a valid 241-character CR name


def _sample(path: Path) -> tuple[str, GQRDeploymentSpec]:
    doc = load_sample(path)
    return doc["metadata"]["name"], parse_spec(doc["spec"])


CASES = [(_sample(p)[0], _sample(p)[1]) for p in SAMPLES] + [(LONG_NAME, parse_spec(MINIMAL))]
IDS = [p.stem.rsplit("_", 1)[-1] for p in SAMPLES] + ["long-name"]
ALL = [(n, s, build_all(n, "ns", s)) for n, s in CASES]


def _component(manifest: Manifest) -> str:
    return str(manifest["metadata"]["labels"]["app.kubernetes.io/component"])


def _deployment_pod_labels(manifests: list[Manifest], component: str) -> list[dict[str, str]]:
    """The pod labels of every Deployment's pods of ``component``."""
    return [
        lab
        for m in manifests
        if m["kind"] == "Deployment"
        for _, lab in pod_specs(m)
        if lab["app.kubernetes.io/component"] == component
    ]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


@pytest.fixture(params=ALL, ids=IDS)
def built(request: pytest.FixtureRequest) -> tuple[str, GQRDeploymentSpec, list[Manifest]]:
    return request.param  # type: ignore[no-any-return]


def test_deterministic_and_serialisable(
    built: tuple[str, GQRDeploymentSpec, list[Manifest]],
) -> None:
    name, spec, manifests = built
    assert json.dumps(build_all(name, "ns", spec), sort_keys=True) == json.dumps(
        manifests, sort_keys=True
    )
    assert all("ownerReferences" not in m["metadata"] for m in manifests)


def test_names_and_labels_are_valid(built: tuple[str, GQRDeploymentSpec, list[Manifest]]) -> None:
    _, _, manifests = built
    keys = [(m["kind"], m["metadata"]["name"]) for m in manifests]
    assert len(keys) == len(set(keys)), keys
    for m in manifests:
        assert DNS_LABEL.match(m["metadata"]["name"]) and len(m["metadata"]["name"]) <= 63
        assert m["metadata"]["namespace"] == "ns"
        labels = m["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "gqr-operator"
        for key in ("name", "instance", "component"):
            assert f"app.kubernetes.io/{key}" in labels
        assert "gqr.dev/deployment" in labels
        for value in labels.values():
            assert LABEL_VALUE.match(value) and len(value) <= 63, value
    isvc = next(m for m in manifests if m["kind"] == "InferenceService")
    assert len(isvc["metadata"]["name"]) <= 45


def test_every_container_is_locked_down(
    built: tuple[str, GQRDeploymentSpec, list[Manifest]],
) -> None:
    _, _, manifests = built
    pods = [p for m in manifests for p in pod_specs(m)]
    assert len(pods) >= 7
    for pod, _ in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for c in _containers(pod):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert sc["readOnlyRootFilesystem"] is (c["name"] != "milvus"), c["name"]
            mounts = {v["mountPath"] for v in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, c["name"]
            assert c["resources"]["requests"] and c["resources"]["limits"], c["name"]
            assert set(c["resources"]["requests"]) == set(c["resources"]["limits"])
            assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_long_running_containers_have_probes(
    built: tuple[str, GQRDeploymentSpec, list[Manifest]],
) -> None:
    _, _, manifests = built
    for m in manifests:
        if m["kind"] in ("Deployment", "StatefulSet", "InferenceService"):
            for pod, _ in pod_specs(m):
                for c in pod["containers"]:
                    assert "readinessProbe" in c and "livenessProbe" in c, (m["kind"], c["name"])


def _walk(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value, *(d for v in value.values() for d in _walk(v))]
    if isinstance(value, list):
        return [d for v in value for d in _walk(v)]
    return []


def test_credentials_only_by_secret_reference(
    built: tuple[str, GQRDeploymentSpec, list[Manifest]],
) -> None:
    _, _, manifests = built
    envs = [e for d in _walk(manifests) for e in d.get("env", []) if isinstance(d.get("env"), list)]
    for env in envs:
        if SECRETISH.search(env["name"]):
            assert "value" not in env and "secretKeyRef" in env["valueFrom"], env
    for d in _walk(manifests):
        for source in d.get("envFrom", []) if isinstance(d.get("envFrom"), list) else []:
            assert set(source) == {"secretRef"}
    assert not any(m["kind"] == "Secret" for m in manifests)


def test_selectors_match_pods(built: tuple[str, GQRDeploymentSpec, list[Manifest]]) -> None:
    _, _, manifests = built
    pods = [lab for m in manifests if m["kind"] != "InferenceService" for _, lab in pod_specs(m)]
    for m in manifests:
        if m["kind"] in ("Deployment", "StatefulSet"):
            want = m["spec"]["selector"]["matchLabels"]
            assert want.items() <= m["spec"]["template"]["metadata"]["labels"].items()
            assert "gqr.dev/arm" not in m["spec"]["template"]["metadata"]["labels"]
        selector = None
        if m["kind"] == "Service":
            selector = m["spec"]["selector"]
        elif m["kind"] == "PodDisruptionBudget":
            selector = m["spec"]["selector"]["matchLabels"]
        if selector is not None:
            assert sum(selector.items() <= p.items() for p in pods) == 1, m["metadata"]["name"]


def test_network_policies_admit_only_gateway_and_pipeline(
    built: tuple[str, GQRDeploymentSpec, list[Manifest]],
) -> None:
    _name, spec, manifests = built
    policies = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    protected = {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in policies}
    managed = spec.cooccurrence.milvus.mode == "managed"
    assert protected == {"gateway", "llm", "ctr-predictor", *(["milvus"] if managed else [])}
    gateway_pods = _deployment_pod_labels(manifests, "gateway")
    gw_policy = next(p for p in policies if _component(p) == "gateway")
    selects = gw_policy["spec"]["podSelector"]["matchLabels"].items()
    assert gateway_pods and all(selects <= p.items() for p in gateway_pods)
    traffic, internal = gw_policy["spec"]["ingress"]
    assert "from" not in traffic and traffic["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert internal["ports"] == [{"protocol": "TCP", "port": 9090}]
    operator, monitoring = internal["from"]
    assert operator["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "gqr-operator"}
    assert monitoring["namespaceSelector"]["matchExpressions"][0]["values"] == ["monitoring"]
    llm_pods = _deployment_pod_labels(manifests, "llm")
    llm_policy = next(p for p in policies if _component(p) == "llm")
    assert all(
        llm_policy["spec"]["podSelector"]["matchLabels"].items() <= p.items() for p in llm_pods
    )
    peer = llm_policy["spec"]["ingress"][0]["from"][0]["podSelector"]
    assert peer["matchExpressions"][0]["values"] == ["gateway", "pipeline"]


def test_llm_server_per_runtime(built: tuple[str, GQRDeploymentSpec, list[Manifest]]) -> None:
    _, spec, manifests = built
    deployments = [m for m in manifests if m["kind"] == "Deployment" and _component(m) == "llm"]
    assert {d["metadata"]["labels"]["gqr.dev/arm"] for d in deployments} == {"stable", "canary"}
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        (server,) = pod["containers"]
        env = {e["name"]: e.get("value") for e in server["env"]}
        assert server["readinessProbe"]["httpGet"]["path"] == "/health"
        assert server["resources"]["limits"]["nvidia.com/gpu"] >= "1"
        if spec.llm.runtime == "tgi":
            assert {"MODEL_ID", "MAX_INPUT_TOKENS", "MAX_TOTAL_TOKENS"} <= env.keys()
            assert env["MAX_TOTAL_TOKENS"] == str(spec.llm.max_total_tokens)
            model = env["MODEL_ID"]
        else:
            args = server["args"]
            assert args[args.index("--max-model-len") + 1] == str(spec.llm.max_total_tokens)
            assert "--model" not in args  # `vllm serve MODEL`: positional
            model = args[0]
        scheme = spec.llm.model.split("://")[0]
        if scheme == "hf":
            assert model == spec.llm.model.removeprefix("hf://")
        elif scheme == "pvc":
            claim = spec.llm.model_storage.pvc.claim_name  # type: ignore[union-attr]
            vol = next(v for v in pod["volumes"] if "persistentVolumeClaim" in v)
            assert vol["persistentVolumeClaim"] == {"claimName": claim, "readOnly": True}
            assert model.startswith(f"/mnt/pvc/{claim}/")
        else:
            fetch = next(c for c in pod["initContainers"] if c["name"] == "fetch-model")
            assert fetch["args"] == [spec.llm.model, model]
            assert fetch["envFrom"][0]["secretRef"]["name"]
        if d["metadata"]["labels"]["gqr.dev/arm"] == "canary":
            adapters = env.get("LORA_ADAPTERS") or " ".join(server.get("args", []))
            assert "gqr=" in adapters


def test_routing_configmap(built: tuple[str, GQRDeploymentSpec, list[Manifest]]) -> None:
    _name, spec, manifests = built
    cm = next(m for m in manifests if m["kind"] == "ConfigMap" and ROUTING_FILE in m["data"])
    doc = json.loads(cm["data"][ROUTING_FILE])
    assert [(a["name"], a["weight"]) for a in doc["arms"]] == [("stable", 90), ("canary", 10)]
    services = {m["metadata"]["name"] for m in manifests if m["kind"] == "Service"}
    for arm in doc["arms"]:
        assert arm["backend"]["url"].split("//")[1].split(".")[0] in services
    # The contract: the gateway's own loader accepts what the operator writes.
    routing = parse_routing(cm["data"][ROUTING_FILE], "routing ConfigMap")
    assert [a.name for a in routing.arms] == ["stable", "canary"]
    assert routing.decoding.temperature == spec.llm.decoding.temperature
    gateway = next(m for m in manifests if m["kind"] == "Deployment" and _component(m) == "gateway")
    volumes = gateway["spec"]["template"]["spec"]["volumes"]
    assert {"name": "routing", "configMap": {"name": cm["metadata"]["name"]}} in volumes


def test_inference_service(built: tuple[str, GQRDeploymentSpec, list[Manifest]]) -> None:
    _, spec, manifests = built
    isvc = next(m for m in manifests if m["kind"] == "InferenceService")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == spec.ctr_predictor.deployment_mode
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (
        spec.ctr_predictor.min_replicas,
        spec.ctr_predictor.max_replicas,
    )
    (c,) = predictor["containers"]
    assert c["args"][:4] == ["--model_name", "ctr", "--model_dir", "/mnt/models"]
    assert c["env"][0]["name"] == "STORAGE_URI"


def test_pipeline_jobs(built: tuple[str, GQRDeploymentSpec, list[Manifest]]) -> None:
    _, spec, manifests = built
    jobs = [m for m in manifests if m["kind"] == "Job"]
    assert [j["metadata"]["labels"]["gqr.dev/pipeline-step"] for j in jobs] == [
        "cor-build",
        "ctr-train",
        "dpo-iterate",
    ]
    for job in jobs:
        js = job["spec"]
        assert js["backoffLimit"] == spec.training.backoff_limit
        assert js["activeDeadlineSeconds"] == spec.training.active_deadline_seconds
        assert js["ttlSecondsAfterFinished"] == spec.training.ttl_seconds_after_finished
        pod = js["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        (c,) = pod["containers"]
        assert c["terminationMessagePath"] == "/dev/termination-log"
        assert "/dev/termination-log" in c["args"]
        if spec.training.tolerations:
            assert pod["tolerations"][0]["key"] == spec.training.tolerations[0].key
        assert pod.get("nodeSelector", {}) == spec.training.node_selector


def test_external_milvus_builds_nothing_and_managed_builds_statefulset() -> None:
    external = parse_spec(
        patched(cooccurrence={"milvus": {"mode": "external", "uri": "http://m:19530"}})
    )
    kinds = {m["kind"] for m in build_all("x", "ns", external)}
    assert "StatefulSet" not in kinds
    managed = build_all("x", "ns", parse_spec(MINIMAL))
    (sts,) = [m for m in managed if m["kind"] == "StatefulSet"]
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"


def test_dpo_job_needs_its_inputs() -> None:
    with pytest.raises(ValueError, match="ctr_uri"):
        build_pipeline_job(
            "x",
            "ns",
            parse_spec(MINIMAL),
            step="dpo-iterate",
            run_id="r1",
            inputs={"base_model": "hf://a/b"},
        )


def test_resource_defaults_fill_both_sides() -> None:
    spec = parse_spec(
        patched(
            llm={
                "model": "hf://a/b",
                "resources": {"requests": {"cpu": "2"}, "limits": {"nvidia.com/gpu": 0}},
            }
        )
    )
    manifests = build_all("x", "ns", spec)
    server = next(m for m in manifests if m["kind"] == "Deployment")["spec"]["template"]["spec"]
    res = server["containers"][0]["resources"]
    assert res["requests"]["cpu"] == res["limits"]["cpu"] == "2"
    assert "nvidia.com/gpu" not in res["limits"] and "tolerations" not in server
    assert res["requests"]["memory"] == "16Gi"


def test_the_gateway_internal_port_admits_the_operator_namespace_and_monitoring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gqr_operator.resources.netpol import internal_peers

    monkeypatch.setenv("GQR_OPERATOR_NAMESPACE", "gqr-system")
    monkeypatch.setenv("GQR_OPERATOR_NAME", "ops")
    monkeypatch.setenv("GQR_MONITORING_NAMESPACES", "monitoring, prometheus")
    operator, monitoring = internal_peers()
    assert operator == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ops"}},
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["gqr-system"]}
            ]
        },
    }
    assert monitoring["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "monitoring",
        "prometheus",
    ]
    monkeypatch.setenv("GQR_MONITORING_NAMESPACES", "")
    assert len(internal_peers()) == 1  # the operator only


def test_restricted_egress_opens_dns_the_deployment_and_the_allowed_blocks() -> None:
    from tests.unit.operator.cases import patched

    from gqr_operator.models.spec import parse_spec
    from gqr_operator.resources.netpol import build_network_policies

    spec = parse_spec(
        patched(
            logs={"uri": "s3://logs/x", "endpoint": "http://minio.storage:9000"},
            network={
                "egress": {
                    "restrict": True,
                    "allow": [{"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"], "ports": [443]}],
                }
            },
        )
    )
    (egress,) = [
        p for p in build_network_policies("x", "ns", spec) if "Egress" in p["spec"]["policyTypes"]
    ]
    assert egress["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "gqr",
        "app.kubernetes.io/instance": "x",
    }
    dns, inside, outside = egress["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert inside["to"] == [
        {"podSelector": {"matchLabels": egress["spec"]["podSelector"]["matchLabels"]}}
    ]
    assert outside["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]
    assert [p["port"] for p in outside["ports"]] == [443, 9000]  # the log store's endpoint port
    off = parse_spec(patched())
    assert all(
        "Egress" not in p["spec"]["policyTypes"] for p in build_network_policies("x", "ns", off)
    )


def test_prometheus_may_scrape_llm_servers_predictor_and_milvus() -> None:
    from tests.unit.operator.cases import patched

    from gqr_operator.models.spec import parse_spec
    from gqr_operator.resources.netpol import build_network_policies

    policies = build_network_policies("x", "ns", parse_spec(patched()))
    scraped = {}
    for p in policies:
        for rule in p["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                names = peer.get("namespaceSelector", {}).get("matchExpressions", [{}])[0]
                if names.get("values") == ["monitoring"] and "podSelector" not in peer:
                    scraped[_component(p)] = [q["port"] for q in rule["ports"]]
    assert scraped == {"gateway": [9090], "llm": [8080], "ctr-predictor": [8080], "milvus": [9091]}
