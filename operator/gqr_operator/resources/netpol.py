"""NetworkPolicies: LLM, CTR predictor and managed Milvus pods are reachable only from this
deployment's gateway and pipeline Job pods; the gateway's traffic port from anywhere, its
internal port (/v1/stats, /metrics, /admin) only from the operator and the monitoring
namespaces.

Where the operator runs and which namespaces monitor come from its environment (the chart
sets them): ``GQR_OPERATOR_NAMESPACE``, ``GQR_OPERATOR_NAME`` (its pods' app.kubernetes.io/name,
default gqr-operator) and ``GQR_MONITORING_NAMESPACES`` (comma-separated, default monitoring).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources.ctr import ISVC_LABEL, ctr_name
from gqr_operator.resources.gateway import INTERNAL_PORT
from gqr_operator.resources.gateway import PORT as GATEWAY_PORT
from gqr_operator.resources.milvus import METRICS_PORT
from gqr_operator.resources.naming import (
    Component,
    child_name,
    label_value,
    labels,
    metadata,
    selector_labels,
)

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
    metrics_port: int,
) -> dict[str, Any]:
    """Ingress from ``peers`` on ``ports``, and from the monitoring namespaces (Prometheus) on
    the pods' ``metrics_port``."""
    name = child_name(cr_name, component, "ingress")
    rules = [{"from": peers, "ports": [{"protocol": "TCP", "port": p} for p in ports]}]
    if monitoring := monitoring_peers():
        rules.append({"from": monitoring, "ports": [{"protocol": "TCP", "port": metrics_port}]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, namespace, labels(cr_name, component)),
        "spec": {
            "podSelector": {"matchLabels": pods},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }


def _namespaces(names: list[str]) -> dict[str, Any]:
    return {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": names}
        ]
    }


def internal_peers() -> list[dict[str, Any]]:
    """Who may reach the gateway's internal port: the operator's pods (in its namespace when
    known, else in any) and every pod of the monitoring namespaces."""
    operator_ns = os.environ.get("GQR_OPERATOR_NAMESPACE", "")
    operator = {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": os.environ.get("GQR_OPERATOR_NAME", "gqr-operator")
            }
        },
        "namespaceSelector": _namespaces([operator_ns]) if operator_ns else {},
    }
    return [operator, *monitoring_peers()]


def monitoring_peers() -> list[dict[str, Any]]:
    """Every pod of the monitoring namespaces (none when the list is empty)."""
    raw = os.environ.get("GQR_MONITORING_NAMESPACES", "monitoring")
    monitoring = [n.strip() for n in raw.split(",") if n.strip()]
    return [{"namespaceSelector": _namespaces(monitoring)}] if monitoring else []


def _gateway_policy(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(
            child_name(name, "gateway", "ingress"), namespace, labels(name, "gateway")
        ),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(name, "gateway")},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": [{"protocol": "TCP", "port": GATEWAY_PORT}]},  # from anywhere
                {
                    "from": internal_peers(),
                    "ports": [{"protocol": "TCP", "port": INTERNAL_PORT}],
                },
            ],
        },
    }


def _port_of(url: str | None) -> int | None:
    if not url:
        return None
    parsed = urlsplit(url)
    try:
        port = parsed.port
    except ValueError:
        return None
    return port or {"https": 443, "http": 80}.get(parsed.scheme)


def build_egress_policy(name: str, namespace: str, spec: GQRDeploymentSpec) -> dict[str, Any]:
    """Every pod of the deployment may reach cluster DNS, the deployment's other pods (and
    Knative's activator for a Serverless predictor) and spec.network.egress.allow, whose
    ports gain those of the object-store endpoints and an external Milvus."""
    instance = {"app.kubernetes.io/name": "gqr", "app.kubernetes.io/instance": label_value(name)}
    extra = {
        p
        for p in (
            _port_of(spec.logs.endpoint),
            _port_of(spec.artifacts.endpoint),
            _port_of(spec.cooccurrence.milvus.uri),
        )
        if p is not None
    }
    dns = {
        "to": [
            {
                "namespaceSelector": _namespaces(["kube-system"]),
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": proto, "port": 53} for proto in ("UDP", "TCP")],
    }
    inside: list[dict[str, Any]] = [{"podSelector": {"matchLabels": instance}}]
    if spec.ctr_predictor.deployment_mode == "Serverless":
        inside.append({"namespaceSelector": _namespaces([KNATIVE_NAMESPACE])})
    rules: list[dict[str, Any]] = [dns, {"to": inside}]
    for target in spec.network.egress.allow:
        block: dict[str, Any] = {"cidr": target.cidr}
        if target.except_:
            block["except"] = list(target.except_)
        ports = sorted({*target.ports, *extra})
        rules.append(
            {"to": [{"ipBlock": block}], "ports": [{"protocol": "TCP", "port": p} for p in ports]}
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(child_name(name, "egress"), namespace, labels(name, "network")),
        "spec": {
            "podSelector": {"matchLabels": instance},
            "policyTypes": ["Egress"],
            "egress": rules,
        },
    }


def build_network_policies(
    name: str, namespace: str, spec: GQRDeploymentSpec
) -> list[dict[str, Any]]:
    """One policy each for gateway, LLM, CTR predictor and (if managed) Milvus pods, and with
    spec.network.egress.restrict the egress policy of all of them."""
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
        _gateway_policy(name, namespace),
        _policy(
            name,
            namespace,
            "llm",
            {**instance, "app.kubernetes.io/component": "llm"},
            [_clients(name)],
            [8080],
            8080,  # TGI and vLLM serve /metrics on their API port
        ),
        _policy(
            name,
            namespace,
            "ctr-predictor",
            {ISVC_LABEL: ctr_name(name)},
            ctr_peers,
            [8080, 8012],
            8080,  # the KServe ModelServer's /metrics
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
                METRICS_PORT,
            )
        )
    if spec.network.egress.restrict:
        policies.append(build_egress_policy(name, namespace, spec))
    return policies
