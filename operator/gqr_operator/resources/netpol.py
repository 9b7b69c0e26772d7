"""NetworkPolicies: LLM, CTR predictor and managed Milvus pods are reachable only from this
deployment's gateway and pipeline Job pods."""

from __future__ import annotations

from typing import Any

from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources.ctr import ISVC_LABEL, ctr_name
from gqr_operator.resources.naming import Component, child_name, label_value, labels, metadata

KNATIVE_NAMESPACE = "knative-serving"


def _clients(cr_name: str) -> dict[str, Any]:
    return {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "gqr",
                "app.kubernetes.io/instance": label_value(cr_name),
            },
            "matchExpressions": [
                {
                    "key": "app.kubernetes.io/component",
                    "operator": "In",
                    "values": ["gateway", "pipeline"],
                }
            ],
        }
    }


def _policy(
    cr_name: str,
    namespace: str,
    component: Component,
    pods: dict[str, str],
    peers: list[dict[str, Any]],
    ports: list[int],
) -> dict[str, Any]:
    name = child_name(cr_name, component, "ingress")
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, namespace, labels(cr_name, component)),
        "spec": {
            "podSelector": {"matchLabels": pods},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": p} for p in ports]}],
        },
    }


def build_network_policies(
    name: str, namespace: str, spec: GQRDeploymentSpec
) -> list[dict[str, Any]]:
    """One policy each for LLM pods, CTR predictor pods and (if managed) Milvus pods."""
    instance = {"app.kubernetes.io/name": "gqr", "app.kubernetes.io/instance": label_value(name)}
    ctr_peers = [_clients(name)]
    if spec.ctr_predictor.deployment_mode == "Serverless":
        # Knative's activator and queue-proxy probes reach the pods from its namespace.
        ctr_peers.append(
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": KNATIVE_NAMESPACE}
                }
            }
        )
    policies = [
        _policy(
            name,
            namespace,
            "llm",
            {**instance, "app.kubernetes.io/component": "llm"},
            [_clients(name)],
            [8080],
        ),
        _policy(
            name, namespace, "ctr-predictor", {ISVC_LABEL: ctr_name(name)}, ctr_peers, [8080, 8012]
        ),
    ]
    if spec.cooccurrence.milvus.mode == "managed":
        policies.append(
            _policy(
                name,
                namespace,
                "milvus",
                {**instance, "app.kubernetes.io/component": "milvus"},
                [_clients(name)],
                [19530],
            )
        )
    return policies
