"""Markers the models carry for the CRD generator (gqr_operator.crdgen), as kubebuilder markers
annotate Go types: CEL rules, list types, integer formats, the resource's names and columns."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel
from pydantic.config import JsonDict

# Status integers are int64 in the CRD, as metav1 writes them (clients read them as such).
INT64: JsonDict = {"format": "int64"}


@dataclass(frozen=True)
class Rule:
    """One CEL rule; the apiserver refuses an object where it is false and answers `message`.

    The message starts with the path of the field it is about (spec.x.y), so the error that
    kubectl prints names the field; a model reused at several places writes `{path}`, which
    the CRD generator replaces with each place's path.
    """

    rule: str
    message: str


def validations(*rules: Rule) -> JsonDict:
    """json_schema_extra of a field, or of a model (in model_config), that carries CEL rules."""
    return {"x-kubernetes-validations": [{"rule": r.rule, "message": r.message} for r in rules]}


def list_map(*keys: str) -> JsonDict:
    """json_schema_extra of a list whose items are unique by keys (x-kubernetes-list-type map)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


def cel_string(text: str) -> str:
    """text as a single-quoted CEL string literal (a regex keeps its backslashes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class PrinterColumn:
    """A `kubectl get` column of a status field; its type is read from the status schema."""

    name: str
    json_path: str
    description: str


@dataclass(frozen=True)
class CustomResource:
    """What the CRD says besides the schema: names, scope, the root models and columns."""

    group: str
    version: str
    kind: str
    plural: str
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()
