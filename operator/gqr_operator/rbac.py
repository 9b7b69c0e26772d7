"""The operator's RBAC: exactly the verbs it uses, one rule per API group and resource set.

`python -m gqr_operator.rbac --namespace NS [--cluster-wide]` prints the Role and ClusterRole
as YAML; the Helm chart and the RBAC integration test use the same rules.
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

# (apiGroups, resources, verbs) — keep in step with kube.py calls and kopf's own needs.
RULES: list[tuple[list[str], list[str], list[str]]] = [
    # kopf watches the custom resources and patches its progress annotations and status.
    (["gqr.dev"], ["gqrdeployments"], ["get", "list", "watch", "patch"]),
    (["gqr.dev"], ["gqrdeployments/status"], ["get", "patch"]),
    # Children: listed to detect drift, server-side applied, pruned.
    (["apps"], ["deployments"], ["get", "list", "patch", "delete"]),
    (["apps"], ["statefulsets"], ["list", "patch", "delete"]),
    ([""], ["services", "configmaps"], ["list", "patch", "delete"]),
    (["policy"], ["poddisruptionbudgets"], ["list", "patch", "delete"]),
    (["networking.k8s.io"], ["networkpolicies"], ["list", "patch", "delete"]),
    (["serving.kserve.io"], ["inferenceservices"], ["list", "patch", "delete"]),
    # The gateway's signing key: created once with a random key, never read back (no get or
    # list: the operator sees no Secret's data); deleted with the GQRDeployment by the GC.
    ([""], ["secrets"], ["create"]),
    # Pipeline Jobs: created once by name, observed; their pods give the termination message.
    (["batch"], ["jobs"], ["get", "create"]),
    # A multi-node step's JobSet (jobset.x-k8s.io, when installed): created once, observed.
    (["jobset.x-k8s.io"], ["jobsets"], ["get", "create"]),
    ([""], ["pods"], ["list"]),
    # kopf posts an Event on every transition.
    ([""], ["events"], ["create"]),
    (["events.k8s.io"], ["events"], ["create"]),
]
PEERING_RULES: list[tuple[list[str], list[str], list[str]]] = [
    (["kopf.dev"], ["kopfpeerings"], ["get", "list", "watch", "patch"]),
]
# Cluster-scoped whatever the mode: kopf watches namespaces (to find the watched ones) and
# CRDs (to notice its resources being installed or removed).
CLUSTER_RULES: list[tuple[list[str], list[str], list[str]]] = [
    ([""], ["namespaces"], ["list", "watch"]),
    (["apiextensions.k8s.io"], ["customresourcedefinitions"], ["list", "watch"]),
]
CLUSTER_PEERING_RULES: list[tuple[list[str], list[str], list[str]]] = [
    (["kopf.dev"], ["clusterkopfpeerings"], ["get", "list", "watch", "patch"]),
]


def _rules(chosen: list[tuple[list[str], list[str], list[str]]]) -> list[dict[str, Any]]:
    return [{"apiGroups": g, "resources": r, "verbs": v} for g, r, v in chosen]


def roles(
    name: str, namespace: str, *, peering: bool = False, cluster_wide: bool = False
) -> list[dict[str, Any]]:
    """Namespaced mode: a Role in `namespace` plus a ClusterRole for the namespace watch.
    Cluster-wide mode: one ClusterRole with everything."""
    meta = {"name": name, "labels": {"app.kubernetes.io/name": "gqr-operator"}}
    rbac = "rbac.authorization.k8s.io/v1"
    if cluster_wide:
        rules = RULES + CLUSTER_RULES + (CLUSTER_PEERING_RULES if peering else [])
        return [
            {"apiVersion": rbac, "kind": "ClusterRole", "metadata": meta, "rules": _rules(rules)}
        ]
    ns_rules = RULES + (PEERING_RULES if peering else [])
    return [
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": {**meta, "namespace": namespace},
            "rules": _rules(ns_rules),
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": meta,
            "rules": _rules(CLUSTER_RULES),
        },
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="gqr-operator")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--peering", action="store_true")
    parser.add_argument("--cluster-wide", action="store_true")
    args = parser.parse_args(argv)
    docs = roles(args.name, args.namespace, peering=args.peering, cluster_wide=args.cluster_wide)
    print(yaml.safe_dump_all(docs, sort_keys=False), end="")


if __name__ == "__main__":
    main()
