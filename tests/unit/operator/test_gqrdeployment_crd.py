"""The CRD generated from the models: committed as generated, columns, CEL messages naming their
field, and the generator refusing a model that the apiserver could not bound or explain."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ConfigDict, Field
from tests.unit.operator.cases import ROOT

from gqr_operator import crdgen
from gqr_operator.models.markers import CustomResource, PrinterColumn

Label = Annotated[str, Field(max_length=8)]
CRD = crdgen.build_crd()
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _walk(schema: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path, schema)]
    for key, sub in schema.get("properties", {}).items():
        nodes += _walk(sub, f"{path}.{key}")
    if "items" in schema:
        nodes += _walk(schema["items"], f"{path}[]")
    return nodes


NODES = _walk(SCHEMA["properties"]["spec"], "spec") + _walk(
    SCHEMA["properties"]["status"], "status"
)


def test_committed_crd_and_reference_are_what_the_models_generate() -> None:
    files = crdgen.outputs(ROOT / "crds", ROOT / "docs" / "reference" / "gqrdeployment.md")
    assert crdgen.stale(files) == [], "stale: run `make crd`"


def test_check_names_the_stale_files_and_says_make_crd(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--out", str(tmp_path / "crds"), "--doc", str(tmp_path / "ref.md")]
    assert crdgen.main([*args, "--check"]) == 1
    err = capsys.readouterr().err
    assert "gqr.dev_gqrdeployments.yaml" in err and "ref.md" in err and "make crd" in err
    assert crdgen.main(args) == 0
    assert crdgen.main([*args, "--check"]) == 0


def test_identity_and_subresources() -> None:
    spec = CRD["spec"]
    assert CRD["metadata"]["name"] == "gqrdeployments.gqr.dev"
    assert crdgen.crd_filename() == "gqr.dev_gqrdeployments.yaml"
    assert (spec["group"], spec["scope"]) == ("gqr.dev", "Namespaced")
    assert spec["names"]["shortNames"] == ["gqr"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_printer_columns_take_their_type_from_the_status_field() -> None:
    columns = CRD["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["type"]) for c in columns] == [
        ("Phase", "string"),
        ("Stable", "string"),
        ("Canary", "string"),
        ("Weight", "integer"),
        ("Canary CTR", "number"),
        ("Stable CTR", "number"),
        ("Age", "date"),
    ]


def test_preserve_unknown_fields_only_for_machine_owned_status() -> None:
    # The pipeline and rollout state machines own these layouts (gqr_operator/rollout/README);
    # the spec and the printer-column fields stay fully typed.
    loose = [p for p, n in NODES if n.get("x-kubernetes-preserve-unknown-fields")]
    assert loose == ["status.pipeline", "status.rollout"]


def test_cel_messages_name_their_field() -> None:
    rules = [(p, r) for p, n in NODES for r in n.get("x-kubernetes-validations", [])]
    assert rules
    for path, rule in rules:
        assert re.match(r"spec\.[a-zA-Z.]+", rule["message"]), rule
        assert path.replace("[]", "") in rule["message"].replace("[]", ""), (path, rule)


def test_task_type_is_immutable() -> None:
    rules = dict(NODES)["spec.task.type"]["x-kubernetes-validations"]
    assert [r["rule"] for r in rules] == ["self == oldSelf"]


class _Base(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")


class _Step(_Base):
    """One step."""

    weight: int = Field(ge=1, le=100)
    """Percent."""
    pause: bool = False
    """Wait after it."""


class _Inner(_Base):
    """Inner."""

    size: int = 3
    """Size."""


class _Spec(_Base):
    """A toy spec."""

    inner: _Inner = Field(default_factory=_Inner)
    """Nested model: {} so the apiserver fills its defaults."""
    steps: list[_Step] = Field(default_factory=lambda: [_Step(weight=10)], max_length=4)
    """Non-empty default list: its items as written, defaults left to the apiserver."""
    labels: dict[str, Label] = Field(default_factory=dict, max_length=4)
    """Empty default: none."""
    name: str | None = Field(default=None, max_length=8)
    """None: no default."""
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    """Exclusive bound."""


class _Status(_Base):
    """A toy status."""

    phase: str | None = Field(default=None, max_length=8)
    """Phase."""


def test_defaults_are_what_the_apiserver_should_store() -> None:
    props = crdgen.structural(_Spec, "spec")["properties"]
    assert props["inner"]["default"] == {}
    assert props["inner"]["properties"]["size"]["default"] == 3
    assert props["steps"]["default"] == [{"weight": 10}]
    assert "default" not in props["labels"] and "default" not in props["name"]
    assert props["top_p"]["minimum"] == 0.0 and props["top_p"]["exclusiveMinimum"] is True


class _Undescribed(_Base):
    """A toy spec."""

    count: int = 1


class _UnboundedString(_Base):
    """A toy spec."""

    name: str = "x"
    """A name."""


class _UnboundedList(_Base):
    """A toy spec."""

    names: list[_Step] = Field(default_factory=list)
    """Names."""


class _UnboundedMap(_Base):
    """A toy spec."""

    labels: dict[str, Label] = Field(default_factory=dict)
    """Labels."""


class _Union(_Base):
    """A toy spec."""

    value: int | bool = 1
    """A value."""


@pytest.mark.parametrize(
    ("model", "error"),
    [
        (_Undescribed, r"spec\.count: no description; write a docstring"),
        (_UnboundedString, r"spec\.name: a string needs max_length"),
        (_UnboundedList, r"spec\.names: a list needs max_length"),
        (_UnboundedMap, r"spec\.labels: a dict needs max_length"),
        (_Union, r"spec\.value: a CRD field has one type"),
    ],
    ids=["undescribed", "string", "list", "map", "union"],
)
def test_generator_refuses_what_the_apiserver_cannot_bound_or_explain(
    model: type[BaseModel], error: str
) -> None:
    with pytest.raises(crdgen.CrdError, match=error):
        crdgen.structural(model, "spec")


def _toy(*columns: PrinterColumn) -> CustomResource:
    return CustomResource(
        group="example.dev",
        version="v1",
        kind="Toy",
        plural="toys",
        description="A toy.",
        spec=_Spec,
        status=_Status,
        printer_columns=columns,
    )


def test_printer_column_must_point_at_a_scalar_status_field() -> None:
    built = crdgen.build_crd(_toy(PrinterColumn("Phase", ".status.phase", "Phase.")))
    assert built["spec"]["versions"][0]["additionalPrinterColumns"][0]["type"] == "string"
    with pytest.raises(crdgen.CrdError, match=r"'Size': \.status\.size is not a scalar"):
        crdgen.build_crd(_toy(PrinterColumn("Size", ".status.size", "Size.")))
