"""The gateway's routing ConfigMap: arms with weights, model versions and backend URLs."""

from __future__ import annotations

from typing import Any, Literal

from gqr_contracts.routing import ArmConfig, BackendSpec, Decoding, RoutingConfig
from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources.llm import (
    BASE_MODEL_NAME,
    INITIAL_VERSION,
    VERSION_ADAPTER,
    ModelVersion,
    llm_url,
)
from gqr_operator.resources.naming import child_name, labels, metadata

ROUTING_FILE = "routing.json"


def routing_name(cr_name: str) -> str:
    """Name of the routing ConfigMap."""
    return child_name(cr_name, "routing")


_SEED_POLICY: dict[str, Literal["fixed", "per_request", "per_user"]] = {
    "perRequest": "per_request",
    "perUser": "per_user",
    "fixed": "fixed",
}


def _arm(
    name: str, namespace: str, spec: GQRDeploymentSpec, arm: str, mv: ModelVersion, weight: int
) -> ArmConfig:
    url = llm_url(name, namespace, mv.version)
    if spec.llm.runtime == "tgi":  # TGI selects the version's LoRA adapter per request
        adapter = {"adapter_id": VERSION_ADAPTER} if mv.adapter_uri else {}
        backend = BackendSpec(kind="tgi", url=url, **adapter)
    else:  # vLLM: OpenAI-compatible, the adapter is addressed as a model name
        model = VERSION_ADAPTER if mv.adapter_uri else BASE_MODEL_NAME
        backend = BackendSpec(kind="openai", url=url, model=model)
    few = few_shot(spec, mv)
    extra = {"few_shot": few} if few else {}
    return ArmConfig(name=arm, weight=weight, model_version=mv.version, backend=backend, **extra)


def few_shot(spec: GQRDeploymentSpec, mv: ModelVersion) -> int:
    """Demonstrations before the prompts of `mv`: spec.bootstrap's few-shot ones for the
    spec's own model (a base model, until a fine-tuned one is promoted), none for a trained
    version."""
    if spec.bootstrap is None or mv.version != INITIAL_VERSION:
        return 0
    return spec.bootstrap.few_shot.count(spec.task.type)


def routing_config(
    name: str,
    namespace: str,
    spec: GQRDeploymentSpec,
    *,
    stable: ModelVersion,
    canary: ModelVersion | None = None,
    canary_weight: int = 0,
) -> RoutingConfig:
    """The routing document (gqr_contracts.routing); the salt stays fixed so weight changes
    move only the users that must move."""
    if not 0 <= canary_weight <= 100:
        raise ValueError(f"canary_weight={canary_weight} is out of range (accepted: 0-100)")
    weight = canary_weight if canary is not None else 0
    arms = [_arm(name, namespace, spec, "stable", stable, 100 - weight)]
    if canary is not None:
        arms.append(_arm(name, namespace, spec, "canary", canary, weight))
    d = spec.llm.decoding
    seed = {"seed": d.seed} if d.seed_policy == "fixed" else {}
    decoding = Decoding(
        temperature=d.temperature,
        top_p=d.top_p,
        max_new_tokens=min(d.max_new_tokens, 1024),
        seed_policy=_SEED_POLICY.get(d.seed_policy, "per_request"),
        **seed,
    )
    # No COR version here: the COR index switches versions atomically itself (CURRENT + alias).
    return RoutingConfig(salt=name[:128], decoding=decoding, arms=tuple(arms))


def build_routing_configmap(name: str, namespace: str, doc: RoutingConfig) -> dict[str, Any]:
    """ConfigMap holding routing.json (`doc`, from `routing_config`); the gateway reloads the
    mounted file on change."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(routing_name(name), namespace, labels(name, "gateway")),
        "data": {ROUTING_FILE: doc.to_document()},
    }
