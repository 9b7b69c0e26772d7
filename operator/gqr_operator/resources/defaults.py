"""Defaults every child shares: images, resources, security contexts, scratch volumes, and the
pod spec and Service fragments the builders have in common."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from gqr_operator.models.common import ResourceRequirements
from gqr_operator.models.placement import Placement

GQR_VERSION = "0.1.0"
REGISTRY = "ghcr.io/gqr-dev"
# Built-in child images, each replaced by the operator's environment (GQR_IMAGE_<NAME>: the
# chart's childImages values) and, where the GQRDeployment has an image field, by that.
IMAGES = {
    "tgi": "ghcr.io/huggingface/text-generation-inference:3.3.6",
    "vllm": "docker.io/vllm/vllm-openai:v0.31.0",
    "milvus": "docker.io/milvusdb/milvus:v2.5.14",
    "storage-initializer": "docker.io/kserve/storage-initializer:v0.15.2",
    # The project's own images (images/<name>/Dockerfile, `make images`).
    "gateway": f"{REGISTRY}/gqr-gateway:{GQR_VERSION}",
    "ctr-predictor": f"{REGISTRY}/gqr-ctr-predictor:{GQR_VERSION}",
    "trainer": f"{REGISTRY}/gqr-trainer:{GQR_VERSION}",
}
PULL_POLICY_ENV = "GQR_IMAGE_PULL_POLICY"
PULL_SECRETS_ENV = "GQR_IMAGE_PULL_SECRETS"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_IMAGE_REF = re.compile(r"^[^\s/:@][^\s]{0,510}$")


def image_env(component: str) -> str:
    """The environment variable that replaces a component's built-in image."""
    return "GQR_IMAGE_" + component.upper().replace("-", "_")


def image(component: str, override: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """A child's image: the GQRDeployment's own (override), else the operator's configured
    one (GQR_IMAGE_<COMPONENT>), else the built-in default."""
    env = os.environ if env is None else env
    return override or env.get(image_env(component)) or IMAGES[component]


def pull_policy(env: Mapping[str, str] | None = None) -> str | None:
    """imagePullPolicy of every child container (GQR_IMAGE_PULL_POLICY); None: Kubernetes'
    default."""
    env = os.environ if env is None else env
    return env.get(PULL_POLICY_ENV) or None


def pull_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """Names of the Secrets every child pod pulls its images with (GQR_IMAGE_PULL_SECRETS,
    comma-separated)."""
    env = os.environ if env is None else env
    return [n.strip() for n in env.get(PULL_SECRETS_ENV, "").split(",") if n.strip()]


def check_image_settings(env: Mapping[str, str] | None = None) -> None:
    """Refuse a misconfigured operator at start-up, naming the variable, value and accepted."""
    env = os.environ if env is None else env
    for component in IMAGES:
        value = env.get(image_env(component))
        if value is not None and value and not _IMAGE_REF.match(value):
            raise ValueError(
                f"{image_env(component)}={value!r} is not an image reference "
                "(accepted: registry/repository:tag or registry/repository@sha256:digest)"
            )
    policy = pull_policy(env)
    if policy is not None and policy not in PULL_POLICIES:
        raise ValueError(
            f"{PULL_POLICY_ENV}={policy!r} is not a pull policy (accepted: "
            f"{', '.join(PULL_POLICIES)}, or empty for Kubernetes' default)"
        )
    for name in pull_secrets(env):
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) or len(name) > 253:
            raise ValueError(
                f"{PULL_SECRETS_ENV} names {name!r}, not a Secret name (accepted: "
                "comma-separated DNS subdomain names)"
            )


RUN_AS = 1000
GPU = "nvidia.com/gpu"

# (requests, limits) per component, used for every key the spec leaves out.
RESOURCES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "llm": ({"cpu": "4", "memory": "16Gi", GPU: "1"}, {"cpu": "8", "memory": "32Gi", GPU: "1"}),
    "ctr-predictor": ({"cpu": "1", "memory": "2Gi"}, {"cpu": "2", "memory": "4Gi"}),
    "milvus": ({"cpu": "1", "memory": "4Gi"}, {"cpu": "2", "memory": "8Gi"}),
    "gateway": ({"cpu": "500m", "memory": "1Gi"}, {"cpu": "2", "memory": "2Gi"}),
    "pipeline": (
        {"cpu": "4", "memory": "16Gi", GPU: "1"},
        {"cpu": "8", "memory": "32Gi", GPU: "1"},
    ),
    "init": ({"cpu": "100m", "memory": "256Mi"}, {"cpu": "1", "memory": "1Gi"}),
}


def resources(component: str, spec: ResourceRequirements | None = None) -> dict[str, Any]:
    """Requests and limits, both always set. A key the spec sets on one side only gets the
    same value on the other; keys it leaves out get the component's defaults. Extended
    resources (GPUs) get request == limit, as Kubernetes requires."""
    d_req, d_lim = RESOURCES[component]
    u_req = {k: str(v) for k, v in ((spec.requests or {}) if spec else {}).items()}
    u_lim = {k: str(v) for k, v in ((spec.limits or {}) if spec else {}).items()}
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for key in sorted({*d_req, *d_lim, *u_req, *u_lim}):
        if key in u_req or key in u_lim:
            requests[key] = u_req.get(key, u_lim.get(key, ""))
            limits[key] = u_lim.get(key, requests[key])
        else:
            requests[key], limits[key] = d_req.get(key, d_lim[key]), d_lim.get(key, d_req[key])
        if "/" in key:
            requests[key] = limits[key]
    # A zero GPU request means CPU-only: drop it rather than ask the scheduler for 0 GPUs.
    for key in [k for k in limits if "/" in k and limits[k] in ("0", "0.0")]:
        del requests[key], limits[key]
    return {"requests": requests, "limits": limits}


def gpu_count(res: dict[str, Any]) -> int:
    """Whole GPUs in a resources dict built by `resources` (0 when none)."""
    try:
        return int(res["limits"].get(GPU, "0"))
    except ValueError:
        return 1


def pod_security_context() -> dict[str, Any]:
    """Non-root, RuntimeDefault seccomp; fsGroup makes mounted volumes writable."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(read_only_root: bool = True) -> dict[str, Any]:
    """Restricted Pod Security Standard settings for one container."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def scratch_volumes(
    *, cache_size: str = "10Gi"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """emptyDirs for /tmp and caches, so the root filesystem can stay read-only."""
    volumes = [
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "cache", "emptyDir": {"sizeLimit": cache_size}},
    ]
    mounts = [{"name": "tmp", "mountPath": "/tmp"}, {"name": "cache", "mountPath": "/cache"}]
    return volumes, mounts


def scratch_env() -> list[dict[str, Any]]:
    """Point HOME and library caches at the writable scratch volumes."""
    return [
        {"name": "HOME", "value": "/tmp"},
        {"name": "HF_HOME", "value": "/cache/huggingface"},
        {"name": "XDG_CACHE_HOME", "value": "/cache"},
    ]


def http_probe(path: str, port: str | int, *, period: int, failures: int) -> dict[str, Any]:
    """An HTTP GET probe."""
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _prune(value: Any) -> Any:
    """A model dumped as the apiserver stores it: no empty lists, no empty matchLabels (Go
    omits empty slices and maps; left in, every pass would see a difference). Empty objects
    stay: an empty labelSelector selects every pod."""
    if isinstance(value, dict):
        return {
            k: _prune(v)
            for k, v in value.items()
            if v != [] and not (k == "matchLabels" and v == {})
        }
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _dump(item: Any) -> Any:
    return _prune(item.model_dump(by_alias=True, exclude_none=True, mode="json"))


def _spread(placement: Placement, selector: Mapping[str, str]) -> list[dict[str, Any]]:
    """Topology spread constraints; one without a labelSelector counts the child's own pods."""
    out = []
    for c in placement.topology_spread_constraints:
        item = _dump(c)
        item.setdefault("labelSelector", {"matchLabels": dict(selector)})
        out.append(item)
    return out


def placement_fields(
    placement: Placement | None, selector: Mapping[str, str], *, gpus: int = 0
) -> dict[str, Any]:
    """The pod spec fields of a child section's Placement (and the operator's pull secrets and
    GPU toleration): nodeSelector, tolerations, affinity, topologySpreadConstraints,
    priorityClassName, serviceAccountName, imagePullSecrets; only those that are set."""
    out: dict[str, Any] = {}
    tolerations = [_dump(t) for t in placement.tolerations] if placement else []
    if gpus:
        gpu = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}
        tolerations += [] if gpu in tolerations else [gpu]
    secrets = pull_secrets() + ([s.name for s in placement.image_pull_secrets] if placement else [])
    if placement is not None and placement.node_selector:
        out["nodeSelector"] = dict(placement.node_selector)
    if tolerations:
        out["tolerations"] = tolerations
    if placement is not None:
        if placement.affinity is not None:
            out["affinity"] = _dump(placement.affinity)
        if spread := _spread(placement, selector):
            out["topologySpreadConstraints"] = spread
        if placement.priority_class_name:
            out["priorityClassName"] = placement.priority_class_name
        if placement.service_account_name:
            out["serviceAccountName"] = placement.service_account_name
    if secrets:
        out["imagePullSecrets"] = [{"name": n} for n in dict.fromkeys(secrets)]
    return out


def pod_metadata(placement: Placement | None, own: Mapping[str, str]) -> dict[str, Any]:
    """Labels (the Placement's podLabels under the operator's own, which win) and annotations
    (podAnnotations) of a child's pods."""
    meta: dict[str, Any] = {"labels": {**(placement.pod_labels if placement else {}), **own}}
    if placement is not None and placement.pod_annotations:
        meta["annotations"] = dict(placement.pod_annotations)
    return meta


def pod_spec(
    containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    *,
    grace_s: int | None = None,
    init_containers: list[dict[str, Any]] | None = None,
    placement: Placement | None = None,
    selector: Mapping[str, str] | None = None,
    gpus: int = 0,
) -> dict[str, Any]:
    """A pod spec as every child runs its pods: no service account token mounted, the
    restricted pod security context, the operator's image pull policy on every container, and
    the section's Placement (placement_fields; `selector`: the child's own pod labels, for
    topology spread); `grace_s` sets terminationGracePeriodSeconds."""
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
    }
    if grace_s is not None:
        pod["terminationGracePeriodSeconds"] = grace_s
    policy = pull_policy()
    for c in [*(init_containers or []), *containers]:
        if policy:
            c["imagePullPolicy"] = policy
    if init_containers is not None:
        pod["initContainers"] = init_containers
    pod["containers"] = containers
    pod["volumes"] = volumes
    pod.update(placement_fields(placement, selector or {}, gpus=gpus))
    return pod


def pod_template(
    pod: dict[str, Any], placement: Placement | None, own: Mapping[str, str]
) -> dict[str, Any]:
    """A workload's pod template: pod_metadata and the pod spec."""
    return {"metadata": pod_metadata(placement, own), "spec": pod}


def cluster_ip_service(
    meta: dict[str, object], selector: dict[str, str], ports: dict[str, int]
) -> dict[str, Any]:
    """A ClusterIP Service; each of `ports` (name -> port) targets the container port of the
    same name."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
                for name, port in ports.items()
            ],
        },
    }
