"""Builds every child of a spec the way the handlers would, for the builder tests."""

from __future__ import annotations

from typing import Any

from gqr_operator.models import GQRDeploymentSpec
from gqr_operator.resources.ctr import build_inference_service
from gqr_operator.resources.gateway import (
    build_gateway_deployment,
    build_gateway_pdb,
    build_gateway_service,
)
from gqr_operator.resources.jobs import STEPS, build_pipeline_job
from gqr_operator.resources.llm import ModelVersion, build_llm_deployment, build_llm_service
from gqr_operator.resources.milvus import build_milvus
from gqr_operator.resources.netpol import build_network_policies
from gqr_operator.resources.routing import build_routing_configmap, routing_config

Manifest = dict[str, Any]


def versions(spec: GQRDeploymentSpec) -> tuple[ModelVersion, ModelVersion]:
    """A stable base model and a canary = base + a DPO adapter in the artifact store."""
    root = spec.artifacts.uri.rstrip("/")
    stable = ModelVersion("20260101-0300", spec.llm.model)
    canary = ModelVersion("20260108-0300", spec.llm.model, f"{root}/llm/20260108-0300")
    return stable, canary


def build_all(name: str, namespace: str, spec: GQRDeploymentSpec) -> list[Manifest]:
    stable, canary = versions(spec)
    root = spec.artifacts.uri.rstrip("/")
    out: list[Manifest] = []
    for mv, arm in ((stable, "stable"), (canary, "canary")):
        out.append(build_llm_deployment(name, namespace, spec, mv, arm))  # type: ignore[arg-type]
        out.append(build_llm_service(name, namespace, mv, arm))  # type: ignore[arg-type]
    out.append(
        build_inference_service(
            name,
            namespace,
            spec,
            storage_uri=spec.ctr_predictor.storage_uri or f"{root}/ctr/v1",
            version="v1",
        )
    )
    out += build_milvus(name, namespace, spec)
    out += [
        build_gateway_deployment(name, namespace, spec),
        build_gateway_service(name, namespace),
        build_gateway_pdb(name, namespace),
    ]
    doc = routing_config(name, namespace, spec, stable=stable, canary=canary, canary_weight=10)
    out.append(build_routing_configmap(name, namespace, doc))
    out += build_network_policies(name, namespace, spec)
    inputs = {
        "base_model": stable.model_uri,
        "ctr_uri": f"{root}/ctr/r1",
        "cor_uri": f"{root}/cor/r1",
    }
    out += [
        build_pipeline_job(name, namespace, spec, step=s, run_id="r1", inputs=inputs) for s in STEPS
    ]
    return out


def pod_specs(manifest: Manifest) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """(pod spec, pod labels) of a workload; KServe's predictor counts as a pod spec."""
    kind = manifest["kind"]
    if kind in ("Deployment", "StatefulSet", "Job"):
        template = manifest["spec"]["template"]
        return [(template["spec"], template["metadata"]["labels"])]
    if kind == "InferenceService":
        predictor = manifest["spec"]["predictor"]
        return [(predictor, predictor["labels"])]
    return []
