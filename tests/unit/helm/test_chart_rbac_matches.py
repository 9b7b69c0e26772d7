"""The chart's Roles and ClusterRoles carry exactly the rules of gqr_operator.rbac (the same
rules the RBAC integration test proves sufficient), in every mode."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.helm.helm_render import by_kind, render

from gqr_operator import rbac


def _rules(docs: list[dict[str, Any]], kind: str) -> list[list[dict[str, Any]]]:
    return [d["rules"] for d in by_kind(docs, kind)]


def _expected(kind: str, **mode: bool) -> list[dict[str, Any]]:
    (doc,) = [d for d in rbac.roles("x", "ns", **mode) if d["kind"] == kind]
    rules: list[dict[str, Any]] = doc["rules"]
    return rules


@pytest.mark.parametrize("peering", [False, True])
def test_namespaced_mode_role_per_watched_namespace(peering: bool) -> None:
    sets = ["watchNamespaces={team-a,team-b}", f"peering.enabled={str(peering).lower()}"]
    docs = render(None, *sets)
    roles = by_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert role["rules"] == _expected("Role", peering=peering)
    assert _rules(docs, "ClusterRole") == [_expected("ClusterRole", peering=peering)]


def test_default_role_is_in_the_release_namespace() -> None:
    docs = render(None, namespace="ops")
    (role,) = by_kind(docs, "Role")
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"] == _expected("Role")


@pytest.mark.parametrize("peering", [False, True])
def test_cluster_wide_mode_one_cluster_role(peering: bool) -> None:
    docs = render("cluster-wide", f"peering.enabled={str(peering).lower()}")
    assert not by_kind(docs, "Role")
    expected = _expected("ClusterRole", peering=peering, cluster_wide=True)
    assert _rules(docs, "ClusterRole") == [expected]


def test_bindings_grant_the_roles_to_the_operator_service_account() -> None:
    docs = render("peering")
    (account,) = by_kind(docs, "ServiceAccount")
    (deployment,) = by_kind(docs, "Deployment")
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    )
    roles = {(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]) for r in docs
             if r["kind"] in ("Role", "ClusterRole")}  # fmt: skip
    for binding in by_kind(docs, "RoleBinding") + by_kind(docs, "ClusterRoleBinding"):
        ref = binding["roleRef"]
        ns = binding["metadata"].get("namespace")
        assert (ref["kind"], ns, ref["name"]) in roles
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["metadata"]["name"],
             "namespace": "gqr-system"}
        ]  # fmt: skip
