"""The CRD itself: identity, documentation on every field, CEL cost guards, printer columns."""

from __future__ import annotations

import re

import pytest
from tests.unit.operator.cases import CEL_TWINS
from tests.unit.operator.openapi import load_crd, root_schema, walk


def test_identity_and_subresources() -> None:
    crd = load_crd()
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "gqrdeployments.gqr.dev"
    assert (spec["group"], spec["scope"]) == ("gqr.dev", "Namespaced")
    assert spec["names"]["kind"] == "GQRDeployment"
    assert spec["names"]["plural"] == "gqrdeployments"
    assert "gqr" in spec["names"]["shortNames"]
    assert spec["names"]["categories"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = load_crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    names = [c["name"] for c in columns]
    assert names == ["Phase", "Stable", "Canary", "Weight", "Canary CTR", "Stable CTR", "Age"]
    status = root_schema()["properties"]["status"]
    for column in columns[:-1]:
        node = status
        for part in column["jsonPath"].split(".")[2:]:
            node = node["properties"][part]
        assert node["type"] == column["type"], column


NODES = walk(root_schema()["properties"]["spec"]) + walk(
    root_schema()["properties"]["status"], "status"
)


@pytest.mark.parametrize(("path", "node"), NODES, ids=[p for p, _ in NODES])
def test_every_field_is_described_and_bounded(path: str, node: dict[str, object]) -> None:
    assert isinstance(node.get("description"), str) and len(str(node["description"])) > 8
    # Bounds keep the apiserver's CEL cost estimates under budget.
    if node.get("type") == "string":
        assert "maxLength" in node or "enum" in node or "format" in node, path
    if node.get("type") == "array":
        assert "maxItems" in node, path
    if node.get("additionalProperties"):
        assert "maxProperties" in node, path


def test_preserve_unknown_fields_only_for_machine_owned_status() -> None:
    # The pipeline and rollout state machines own these layouts (gqr_operator/rollout/README);
    # the spec and the printer-column fields stay fully typed.
    loose = [p for p, n in NODES if n.get("x-kubernetes-preserve-unknown-fields")]
    assert loose == ["status.pipeline", "status.rollout"]


def test_cel_rules_name_their_field_and_have_twins() -> None:
    seen = {}
    for path, node in NODES:
        rules = node.get("x-kubernetes-validations", [])
        assert isinstance(rules, list)
        for rule in rules:
            assert re.match(r"spec\.[a-zA-Z.]+", rule["message"]), rule
            assert path.replace("[]", "") in rule["message"], rule
        plain = [r for r in rules if "oldSelf" not in r["rule"]]
        if plain:
            seen[path] = len(plain)
    assert seen == {path: len(twins) for path, twins in CEL_TWINS.items()}


def test_task_type_is_immutable() -> None:
    task_type = root_schema()["properties"]["spec"]["properties"]["task"]["properties"]["type"]
    assert task_type["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
