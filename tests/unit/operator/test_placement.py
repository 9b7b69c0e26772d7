"""Placement, identity, images and engine settings of every child: a CR setting every field
renders into every child; the chart's (the operator's environment) images, pull policy and
pull secrets reach every container; the engine's extraArgs and env never clash with the
operator's own settings."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.unit.operator.cases import EVERYTHING, MINIMAL, patched, placement
from tests.unit.operator.children import Manifest, build_all, pod_specs

from gqr_operator.allowlist import Allowlist
from gqr_operator.models import parse_spec
from gqr_operator.models.serving import ENGINE_ENV, ENGINE_FLAGS
from gqr_operator.resources import defaults

SECTION = {  # the child section each workload's pods take their placement from
    "llm": "llm",
    "gateway": "gateway",
    "ctr-predictor": "ctr",
    "milvus": "milvus",
    "pipeline": "training",
}


def _workloads(manifests: list[Manifest]) -> list[tuple[Manifest, dict[str, Any], dict[str, Any]]]:
    """(manifest, pod spec, pod metadata) of every workload."""
    out = []
    for m in manifests:
        for pod, labels in pod_specs(m):
            if m["kind"] == "InferenceService":
                meta = {"labels": labels, "annotations": pod.get("annotations", {})}
            else:
                meta = m["spec"]["template"]["metadata"]
            out.append((m, pod, meta))
    return out


def _component(m: Manifest) -> str:
    return str(m["metadata"]["labels"]["app.kubernetes.io/component"])


def test_every_placement_field_renders_into_every_child() -> None:
    manifests = build_all("x", "ns", parse_spec(EVERYTHING))
    workloads = _workloads(manifests)
    assert sorted({_component(m) for m, _, _ in workloads}) == sorted(SECTION)
    assert len(workloads) == 2 + 1 + 1 + 1 + 3  # llm x2, gateway, isvc, milvus, 3 jobs
    for m, pod, meta in workloads:
        team = SECTION[_component(m)]
        want = placement(team)
        where = f"{m['kind']}/{m['metadata']['name']}"
        assert pod["nodeSelector"] == want["nodeSelector"], where
        assert want["tolerations"][0] in pod["tolerations"], where
        assert pod["affinity"] == want["affinity"], where
        assert pod["priorityClassName"] == f"gqr-{team}", where
        assert pod["serviceAccountName"] == f"gqr-{team}", where
        assert pod["automountServiceAccountToken"] is False, where
        assert pod["imagePullSecrets"] == [{"name": f"regcred-{team}"}], where
        zone, host = pod["topologySpreadConstraints"]
        # Without a labelSelector, a constraint counts the child's own pods.
        own = m["spec"].get("selector", {}).get("matchLabels")
        if own is not None:
            assert zone["labelSelector"] == {"matchLabels": own}, where
        assert zone["minDomains"] == 2 and zone["whenUnsatisfiable"] == "DoNotSchedule"
        assert host == {"maxSkew": 1, **want["topologySpreadConstraints"][1]}, where
        assert meta["labels"]["team"] == team and meta["labels"]["example.com/cost-centre"]
        assert meta["labels"]["app.kubernetes.io/instance"] == "x", where
        assert meta["annotations"] == want["podAnnotations"], where


def test_the_operators_labels_win_over_pod_labels() -> None:
    spec = parse_spec(
        patched(gateway={"podLabels": {"app.kubernetes.io/component": "x", "team": "a"}})
    )
    gw = next(m for m in build_all("x", "ns", spec) if _component(m) == "gateway")
    labels = gw["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "gateway" and labels["team"] == "a"
    assert gw["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_gpu_pods_tolerate_the_gpu_taint_next_to_their_own() -> None:
    manifests = build_all("x", "ns", parse_spec(EVERYTHING))
    gpu = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    for m, pod, _ in _workloads(manifests):
        has_gpu = any("nvidia.com/gpu" in c["resources"]["limits"] for c in pod["containers"])
        assert (gpu in pod["tolerations"]) is has_gpu, m["metadata"]["name"]


def test_minimal_spec_sets_no_placement() -> None:
    for m, pod, meta in _workloads(build_all("x", "ns", parse_spec(MINIMAL))):
        for key in ("nodeSelector", "affinity", "topologySpreadConstraints", "priorityClassName"):
            assert key not in pod, (m["metadata"]["name"], key)
        assert "serviceAccountName" not in pod and "imagePullSecrets" not in pod
        assert "annotations" not in meta or m["kind"] == "InferenceService"


def test_engine_args_and_env_follow_the_operators(monkeypatch: pytest.MonkeyPatch) -> None:
    for runtime in ("vllm", "tgi"):
        spec = parse_spec(patched(llm={**EVERYTHING["llm"], "runtime": runtime}))
        llm = next(m for m in build_all("x", "ns", spec) if _component(m) == "llm")
        (server,) = llm["spec"]["template"]["spec"]["containers"]
        assert server["args"][-5:] == spec.llm.extra_args
        env = server["env"]
        assert env[-2:] == [
            {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"},
            {"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {"name": "w", "key": "k"}}},
        ]
        names = [e["name"] for e in env]
        assert len(names) == len(set(names))
        # What the operator sets is exactly what the model refuses in extraArgs and env.
        own_env = {n for n in names[:-2]}
        assert own_env <= set(ENGINE_ENV), own_env - set(ENGINE_ENV)
        own_flags = {a.split("=")[0] for a in server["args"][:-5] if a.startswith("-")}
        assert own_flags <= set(ENGINE_FLAGS), own_flags - set(ENGINE_FLAGS)


def test_update_strategy_keeps_a_one_replica_server_serving() -> None:
    llm = next(m for m in build_all("x", "ns", parse_spec(MINIMAL)) if _component(m) == "llm")
    assert llm["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    spec = parse_spec(EVERYTHING)
    llm = next(m for m in build_all("x", "ns", spec) if _component(m) == "llm")
    assert llm["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 2, "maxUnavailable": 1}


def test_model_messages_name_value_and_accepted() -> None:
    cases = [
        ({"env": [{"name": "PORT", "value": "1"}]}, r"spec.llm.env name=PORT .*accepted: any"),
        ({"extraArgs": ["--port", "1"]}, r"extraArgs='--port' .*accepted: any flag but"),
        ({"env": [{"name": "DB_PASSWORD", "value": "x"}]}, r"DB_PASSWORD .*valueFrom"),
        ({"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}, r"name A"),
    ]
    for llm, message in cases:
        with pytest.raises(ValueError, match=message):
            parse_spec(patched(llm={"model": "hf://a/b", **llm}))


def test_pre_placement_training_fields_still_parse() -> None:
    spec = parse_spec(
        patched(
            training={
                "nodeSelector": {"gpu": "a100"},
                "podLabels": {"team": "a"},
                "tolerations": [{"key": "gpu", "operator": "Exists"}],
            },
            ctrPredictor={"serviceAccountName": "kserve-s3"},
        )
    )
    assert spec.training.node_selector == {"gpu": "a100"}
    assert spec.ctr_predictor.service_account_name == "kserve-s3"


def test_the_allowlist_covers_placement_references() -> None:
    found = Allowlist(secrets=("w",), service_accounts=()).violations(parse_spec(EVERYTHING))
    assert any("spec.gateway.serviceAccountName='gqr-gateway'" in v for v in found)
    assert any("spec.training.imagePullSecrets[0].name='regcred-training'" in v for v in found)
    assert not any("spec.llm.env" in v for v in found)  # Secret w is allowed


IMAGE_ENV = {
    "GQR_IMAGE_TGI": "mirror.example/tgi:1",
    "GQR_IMAGE_VLLM": "mirror.example/vllm:1",
    "GQR_IMAGE_MILVUS": "mirror.example/milvus:1",
    "GQR_IMAGE_STORAGE_INITIALIZER": "mirror.example/init:1",
    "GQR_IMAGE_GATEWAY": "mirror.example/gateway@sha256:" + "a" * 64,
    "GQR_IMAGE_CTR_PREDICTOR": "mirror.example/ctr:1",
    "GQR_IMAGE_TRAINER": "mirror.example/trainer:1",
    "GQR_IMAGE_PULL_POLICY": "Always",
    "GQR_IMAGE_PULL_SECRETS": "mirror-cred, other",
}


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def test_the_operators_images_reach_every_container(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in IMAGE_ENV.items():
        monkeypatch.setenv(key, value)
    defaults.check_image_settings()
    spec = copy.deepcopy(MINIMAL)
    spec["llm"] = {
        "model": "s3://m/base",
        "modelStorage": {"objectStore": {"secretRef": {"name": "s"}}},
    }
    images = set()
    for m, pod, _ in _workloads(build_all("x", "ns", parse_spec(spec))):
        assert pod["imagePullSecrets"] == [{"name": "mirror-cred"}, {"name": "other"}]
        for c in _containers(pod):
            assert c["imagePullPolicy"] == "Always", (m["metadata"]["name"], c["name"])
            images.add(c["image"])
    # The default runtime is vLLM: the TGI image is the one no child uses.
    want = {v for k, v in IMAGE_ENV.items() if k not in ("GQR_IMAGE_TGI",) and "PULL" not in k}
    assert images == want
    # A GQRDeployment's own image fields still win; its pull secrets add to the operator's.
    spec["gateway"] = {"image": "own/gateway:2", "imagePullSecrets": [{"name": "own"}]}
    gw = next(m for m in build_all("x", "ns", parse_spec(spec)) if _component(m) == "gateway")
    pod = gw["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "own/gateway:2"
    assert [s["name"] for s in pod["imagePullSecrets"]] == ["mirror-cred", "other", "own"]


def test_without_configuration_the_builtin_images_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in IMAGE_ENV:
        monkeypatch.delenv(key, raising=False)
    images = {
        c["image"]
        for _, pod, _ in _workloads(build_all("x", "ns", parse_spec(MINIMAL)))
        for c in _containers(pod)
    }
    assert images <= set(defaults.IMAGES.values())
    for _, pod, _ in _workloads(build_all("x", "ns", parse_spec(MINIMAL))):
        assert all("imagePullPolicy" not in c for c in _containers(pod))


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        ("GQR_IMAGE_PULL_POLICY", "Sometimes", "Always, IfNotPresent, Never"),
        ("GQR_IMAGE_GATEWAY", "has space:1", "registry/repository:tag"),
        ("GQR_IMAGE_PULL_SECRETS", "ok,Not_A_Name", "DNS subdomain"),
    ],
)
def test_a_misconfigured_operator_is_refused_naming_the_variable(
    key: str, value: str, accepted: str
) -> None:
    with pytest.raises(ValueError, match=key) as err:
        defaults.check_image_settings({key: value})
    assert repr(value.split(",")[-1]) in str(err.value) and accepted in str(err.value)
