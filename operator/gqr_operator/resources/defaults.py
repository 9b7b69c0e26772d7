"""Defaults every child shares: images, resources, security contexts, scratch volumes, and the
pod spec and Service fragments the builders have in common."""

from __future__ import annotations

from typing import Any

from gqr_operator.models.common import ResourceRequirements

GQR_VERSION = "0.1.0"
REGISTRY = "ghcr.io/gqr-dev"
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


def pod_spec(
    containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    *,
    grace_s: int | None = None,
    init_containers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A pod spec as every child runs its pods: no service account token mounted, the
    restricted pod security context; `grace_s` sets terminationGracePeriodSeconds."""
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
    }
    if grace_s is not None:
        pod["terminationGracePeriodSeconds"] = grace_s
    if init_containers is not None:
        pod["initContainers"] = init_containers
    pod["containers"] = containers
    pod["volumes"] = volumes
    return pod


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
