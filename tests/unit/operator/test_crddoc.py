"""docs/reference/gqrdeployment.md is generated from the CRD and must not go stale."""

from __future__ import annotations

from tests.unit.operator.openapi import ROOT, load_crd

from gqr_operator import crddoc

DOC = ROOT / "docs" / "reference" / "gqrdeployment.md"


def test_reference_doc_is_current() -> None:
    expected = crddoc.render(load_crd())
    assert DOC.read_text() == expected, (
        "docs/reference/gqrdeployment.md is stale: run "
        "`python -m gqr_operator.crddoc > docs/reference/gqrdeployment.md`"
    )


def test_reference_doc_lists_every_spec_field() -> None:
    text = DOC.read_text()
    for field in (
        "spec.rollout.steps[].weight",
        "spec.llm.modelStorage.objectStore.secretRef",
        "status.conditions[].lastTransitionTime",
    ):
        assert f"`{field}`" in text
