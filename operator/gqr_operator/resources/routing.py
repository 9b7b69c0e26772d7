"""The gateway's routing ConfigMap: arms with weights, model versions and backend URLs."""

from __future__ import annotations

import json
from typing import Any

from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources.ctr import ctr_predict_url
from gqr_operator.resources.llm import BASE_MODEL_NAME, VERSION_ADAPTER, ModelVersion, llm_url
from gqr_operator.resources.milvus import milvus_uri
from gqr_operator.resources.naming import child_name, labels, metadata
from gqr_operator.resources.storage import Mounts, storage_uri

ROUTING_FILE = "routing.json"


def routing_name(cr_name: str) -> str:
    """Name of the routing ConfigMap."""
    return child_name(cr_name, "routing")


def _arm(
    name: str, namespace: str, spec: GQRDeploymentSpec, arm: str, mv: ModelVersion, weight: int
) -> dict[str, Any]:
    return {
        "arm": arm,
        "version": mv.version,
        "weight": weight,
        "url": llm_url(name, namespace, mv.version),
        "runtime": spec.llm.runtime,
        # TGI selects an adapter per request (adapter_id); vLLM by model name.
        "adapter": VERSION_ADAPTER if mv.adapter_uri else None,
        "model": VERSION_ADAPTER if mv.adapter_uri else BASE_MODEL_NAME,
    }


def routing_config(
    name: str,
    namespace: str,
    spec: GQRDeploymentSpec,
    *,
    stable: ModelVersion,
    canary: ModelVersion | None = None,
    canary_weight: int = 0,
    cor_collection: str | None = None,
) -> dict[str, Any]:
    """The routing document (also what the gateway's config loader validates)."""
    if not 0 <= canary_weight <= 100:
        raise ValueError(f"canary_weight={canary_weight} is out of range (accepted: 0-100)")
    weight = canary_weight if canary is not None else 0
    arms = [_arm(name, namespace, spec, "stable", stable, 100 - weight)]
    if canary is not None:
        arms.append(_arm(name, namespace, spec, "canary", canary, weight))
    milvus = spec.cooccurrence.milvus
    return {
        "deployment": name,
        "task": spec.task.model_dump(by_alias=True),
        "decoding": spec.llm.decoding.model_dump(by_alias=True),
        "maxInputTokens": spec.llm.max_input_tokens,
        "arms": arms,
        "ctr": {"url": ctr_predict_url(name, namespace), "rerank": spec.gateway.rerank},
        "cooccurrence": {
            "uri": milvus_uri(name, namespace, spec),
            "tokenEnv": "MILVUS_TOKEN" if milvus.secret_ref else None,
            "collection": cor_collection,
            "neighbours": spec.cooccurrence.neighbours,
            "topM": spec.cooccurrence.top_m,
        },
        "logs": {
            "uri": storage_uri(spec.logs.uri, Mounts()),
            "retentionDays": spec.logs.retention_days,
        },
    }


def build_routing_configmap(
    name: str,
    namespace: str,
    spec: GQRDeploymentSpec,
    *,
    stable: ModelVersion,
    canary: ModelVersion | None = None,
    canary_weight: int = 0,
    cor_collection: str | None = None,
) -> dict[str, Any]:
    """ConfigMap holding routing.json; the gateway reloads the mounted file on change."""
    doc = routing_config(
        name,
        namespace,
        spec,
        stable=stable,
        canary=canary,
        canary_weight=canary_weight,
        cor_collection=cor_collection,
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(routing_name(name), namespace, labels(name, "gateway")),
        "data": {ROUTING_FILE: json.dumps(doc, indent=2, sort_keys=True) + "\n"},
    }
