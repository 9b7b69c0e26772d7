"""LLM server Deployment and Service, one pair per model version (TGI or vLLM runtime)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources import defaults
from gqr_operator.resources.naming import Arm, child_name, labels, metadata, selector_labels
from gqr_operator.resources.storage import Mounts, fetched_path

PORT = 8080
VERSION_ADAPTER = "gqr"  # requests select a version's own adapter by this name
BASE_MODEL_NAME = "base"  # vLLM's served model name of the base weights


INITIAL_VERSION = "initial"
"""Version name of spec.llm.model, served until the first promotion."""


@dataclass(frozen=True)
class ModelVersion:
    """One LLM version: base (or merged) weights and, after LoRA DPO, its adapter."""

    version: str
    model_uri: str
    adapter_uri: str | None = None


def llm_name(cr_name: str, version: str) -> str:
    """Name of the Deployment and Service of one model version."""
    return child_name(cr_name, "llm", version)


def llm_url(cr_name: str, namespace: str, version: str) -> str:
    """In-cluster base URL of one model version's server."""
    return f"http://{llm_name(cr_name, version)}.{namespace}.svc.cluster.local:{PORT}"


def _paths(spec: GQRDeploymentSpec, mv: ModelVersion, mounts: Mounts) -> tuple[str, list[str]]:
    """Local model path and `name=path` adapter pairs, adding fetchers/volumes to mounts."""
    store = spec.llm.model_storage.object_store
    artifacts = spec.artifacts

    def fetch(name: str, uri: str) -> str:
        from_artifacts = uri.startswith(artifacts.uri.rstrip("/") + "/")
        secret = artifacts.secret_ref if from_artifacts else (store.secret_ref if store else None)
        return fetched_path(
            name,
            uri,
            mounts,
            secret=secret,
            endpoint=store.endpoint if store else None,
            region=store.region if store else None,
            cache_size=spec.llm.model_storage.cache_size,
        )

    model = fetch("model", mv.model_uri)
    adapters = [f"{a.name}={fetch(a.name, a.uri)}" for a in spec.llm.lora_adapters]
    if mv.adapter_uri:
        adapters.append(f"{VERSION_ADAPTER}={fetch(VERSION_ADAPTER, mv.adapter_uri)}")
    return model, adapters


def _tgi(spec: GQRDeploymentSpec, model: str, adapters: list[str], gpus: int) -> dict[str, Any]:
    env = [
        {"name": "MODEL_ID", "value": model},
        {"name": "PORT", "value": str(PORT)},
        {"name": "HOSTNAME", "value": "0.0.0.0"},
        {"name": "MAX_INPUT_TOKENS", "value": str(spec.llm.max_input_tokens)},
        {"name": "MAX_TOTAL_TOKENS", "value": str(spec.llm.max_total_tokens)},
        {"name": "MAX_BATCH_PREFILL_TOKENS", "value": str(max(4096, spec.llm.max_input_tokens))},
        {"name": "HUGGINGFACE_HUB_CACHE", "value": "/cache/huggingface/hub"},
    ]
    if adapters:
        env.append({"name": "LORA_ADAPTERS", "value": ",".join(adapters)})
    if gpus > 1:
        env.append({"name": "NUM_SHARD", "value": str(gpus)})
    return {"env": env}


def _vllm(spec: GQRDeploymentSpec, model: str, adapters: list[str], gpus: int) -> dict[str, Any]:
    # The image's entrypoint is `vllm serve`, which takes the model as its positional argument
    # (`--model` warns that it goes in a future release).
    args = [
        model,
        "--served-model-name",
        BASE_MODEL_NAME,
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
        "--max-model-len",
        str(spec.llm.max_total_tokens),
        "--tensor-parallel-size",
        str(max(gpus, 1)),
    ]
    if adapters:
        args += ["--enable-lora", "--max-loras", str(len(adapters)), "--lora-modules", *adapters]
    return {"args": args, "env": []}


def build_llm_deployment(
    name: str, namespace: str, spec: GQRDeploymentSpec, mv: ModelVersion, arm: Arm
) -> dict[str, Any]:
    """The Deployment serving model version `mv` (selector by version, never by arm)."""
    res = defaults.resources("llm", spec.llm.resources)
    gpus = defaults.gpu_count(res)
    volumes, scratch = defaults.scratch_volumes(cache_size=spec.llm.model_storage.cache_size)
    volumes.append({"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}})
    mounts = Mounts(volumes=volumes, mounts=[*scratch, {"name": "shm", "mountPath": "/dev/shm"}])
    model, adapters = _paths(spec, mv, mounts)
    runtime = (_tgi if spec.llm.runtime == "tgi" else _vllm)(spec, model, adapters, gpus)
    env = [*defaults.scratch_env(), *runtime["env"]]
    if spec.llm.hf_token_secret_ref is not None:
        ref = spec.llm.hf_token_secret_ref
        env.append(
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
        )
    # The engine's own settings, after the operator's (the model refuses any that clash).
    env += [e.model_dump(by_alias=True, exclude_none=True) for e in spec.llm.env]
    args = [*runtime.get("args", []), *spec.llm.extra_args]
    container: dict[str, Any] = {
        "name": "server",
        "image": defaults.image(spec.llm.runtime, spec.llm.image),
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": env,
        "resources": res,
        "securityContext": defaults.container_security_context(),
        "volumeMounts": mounts.mounts,
        # Loading weights can take many minutes; startup gates the other two probes.
        "startupProbe": defaults.http_probe("/health", "http", period=10, failures=180),
        "readinessProbe": defaults.http_probe("/health", "http", period=10, failures=3),
        "livenessProbe": defaults.http_probe("/health", "http", period=20, failures=3),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if args:
        container["args"] = args
    selector = selector_labels(name, "llm", mv.version)
    pod = defaults.pod_spec(
        [container],
        mounts.volumes,
        grace_s=60,
        init_containers=mounts.init_containers,
        placement=spec.llm,
        selector=selector,
        gpus=gpus,
    )
    update = spec.llm.update_strategy
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(
            llm_name(name, mv.version), namespace, labels(name, "llm", mv.version, arm)
        ),
        "spec": {
            "replicas": spec.llm.replicas,
            "selector": {"matchLabels": selector},
            # maxSurge 1 / maxUnavailable 0 by default: a one-replica server keeps serving
            # while its successor loads (it needs the GPUs of one more pod meanwhile).
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {
                    "maxSurge": update.max_surge,
                    "maxUnavailable": update.max_unavailable,
                },
            },
            "template": defaults.pod_template(pod, spec.llm, selector),
        },
    }


def build_llm_service(name: str, namespace: str, mv: ModelVersion, arm: Arm) -> dict[str, Any]:
    """ClusterIP Service in front of one model version's pods."""
    return defaults.cluster_ip_service(
        metadata(llm_name(name, mv.version), namespace, labels(name, "llm", mv.version, arm)),
        selector_labels(name, "llm", mv.version),
        {"http": PORT},
    )
