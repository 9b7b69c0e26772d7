"""docs/reference/gqrdeployment.md, rendered from the generated CRD, names every field."""

from __future__ import annotations

from tests.unit.operator.cases import ROOT

DOC = ROOT / "docs" / "reference" / "gqrdeployment.md"


def test_reference_doc_lists_every_spec_field() -> None:
    text = DOC.read_text()
    for field in (
        "spec.rollout.steps[].weight",
        "spec.llm.modelStorage.objectStore.secretRef",
        "status.conditions[].lastTransitionTime",
    ):
        assert f"`{field}`" in text
