"""Generate the GQRDeployment CRD from the pydantic models, as controller-gen does from Go types.

    python -m gqr_operator.crdgen --out crds --doc docs/reference/gqrdeployment.md
    python -m gqr_operator.crdgen --out crds --doc docs/reference/gqrdeployment.md --check

The models (gqr_operator.models) are the one source: docstrings become descriptions, Field
constraints and Literal types the bounds and enums, defaults what the apiserver stores, and the
markers (gqr_operator.models.markers) the CEL rules, list types and printer columns. `make crd`
writes the CRD, its chart copy and the field reference; `make lint` fails when they are stale.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, NoDefault
from pydantic_core import core_schema

from gqr_operator import crddoc
from gqr_operator.models import RESOURCE
from gqr_operator.models.markers import CustomResource, PrinterColumn

Schema = dict[str, Any]

HEADER = (
    "# Generated from the models in operator/gqr_operator/models by `make crd`\n"
    "# (python -m gqr_operator.crdgen); do not edit: change the models and run `make crd`.\n"
)
_FACETS = (
    "format",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)
_RULES = "x-kubernetes-validations"
_MARKERS = ("x-kubernetes-list-type", "x-kubernetes-list-map-keys", _RULES)
_STRUCTURE = ("title", "description", "type", "anyOf", "const", "properties", "required")
_TRANSLATED = {*_STRUCTURE, "items", "additionalProperties", *_FACETS, *_MARKERS}
# Written in this order: what a node is, its bounds, its rules, then what it contains.
_ORDER = (
    "description",
    "type",
    "x-kubernetes-int-or-string",
    "anyOf",
    *_FACETS,
    "x-kubernetes-preserve-unknown-fields",
    *_MARKERS,
    "required",
    "properties",
    "items",
    "additionalProperties",
)


class CrdError(ValueError):
    """A model the CRD cannot express, or would express without a description or a bound."""


class _StoredDefaults(GenerateJsonSchema):
    """pydantic's JSON schema, with the defaults the apiserver should store."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        if "default_factory" in schema and not schema.get("default_factory_takes_data"):
            return _stored(cast(Callable[[], Any], schema["default_factory"])())
        return _stored(schema.get("default", NoDefault))


def _stored(value: Any) -> Any:
    # None and an empty list or map mean the same as absent. A nested model defaults to {}: the
    # apiserver fills its fields' own defaults, so what it stores equals the model's defaults.
    if value is None or (isinstance(value, list | dict) and not value):
        return NoDefault
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, exclude_defaults=True, mode="json")
    if isinstance(value, list):
        return [_stored(item) for item in value]
    return value


def _merge(base: Schema, over: Schema) -> Schema:
    """over's keys win (a field's description over its model's), CEL rules add up."""
    rules = base.get(_RULES, []) + over.get(_RULES, [])
    merged = {**base, **over}
    if rules:
        merged[_RULES] = rules
    return merged


def _flatten(raw: Schema, defs: dict[str, Schema]) -> Schema:
    """raw with model references inlined and `X | None` read as X (absent means None)."""
    while True:
        if "$ref" in raw:
            target = defs[raw["$ref"].rsplit("/", 1)[-1]]
            raw = _merge(target, {k: v for k, v in raw.items() if k != "$ref"})
            continue
        options = raw.get("anyOf", [])
        present = [o for o in options if o != {"type": "null"}]
        if len(present) == len(options):
            return raw
        rest = {k: v for k, v in raw.items() if k != "anyOf"}
        raw = _merge(present[0], rest) if len(present) == 1 else {**rest, "anyOf": present}


def _int_or_string(options: list[Schema], path: str) -> Schema:
    if sorted(str(o.get("type")) for o in options) != ["integer", "string"] or any(
        len(o) != 1 for o in options
    ):
        raise CrdError(f"{path}: a CRD field has one type; unions allowed: X | None, int | str")
    anyof = [{"type": "integer"}, {"type": "string"}]
    return {"x-kubernetes-int-or-string": True, "anyOf": anyof}


def _check_bounds(node: Schema, path: str) -> None:
    """The apiserver estimates every CEL rule's cost from these bounds; unbounded, it refuses."""
    kind = node.get("type")
    if kind == "string" and not {"maxLength", "enum", "format"} & node.keys():
        raise CrdError(f"{path}: a string needs max_length (or a Literal type, or a format)")
    if kind == "array" and "maxItems" not in node:
        raise CrdError(f"{path}: a list needs max_length")
    if isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
        raise CrdError(f"{path}: a dict needs max_length")


def _node(raw: Schema, defs: dict[str, Schema], path: str, *, described: bool = True) -> Schema:
    """One node of the CRD's structural schema, from a node of pydantic's JSON schema."""
    raw = _flatten(raw, defs)
    untranslated = sorted(set(raw) - _TRANSLATED)
    if untranslated:
        raise CrdError(f"{path}: the CRD generator does not translate {untranslated}")
    out: Schema = {}
    if description := " ".join(str(raw.get("description", "")).split()):
        out["description"] = description
    elif described:
        raise CrdError(
            f"{path}: no description; write a docstring under the field (a list's items take "
            "their model's class docstring)"
        )
    if "anyOf" in raw:
        out.update(_int_or_string(raw["anyOf"], path))
    elif "type" in raw:
        out["type"] = raw["type"]
    else:
        raise CrdError(f"{path}: no type (Any is only accepted as dict[str, Any])")
    out.update({k: raw[k] for k in (*_FACETS, *_MARKERS) if k in raw})
    if _RULES in out:  # pydantic sorts their keys; a rule reads better before its message
        # A model reused at several places writes its field's path as {path}.
        where = path.replace("[]", "")
        out[_RULES] = [
            {"rule": r["rule"], "message": r["message"].replace("{path}", where)}
            for r in out[_RULES]
        ]
    if "const" in raw:
        out["enum"] = [raw["const"]]
    # OpenAPI v3.0, the apiserver's dialect, writes an exclusive bound as a flag on the bound.
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if flag in out:
            out[bound], out[flag] = out[flag], True
    if raw.get("required"):
        out["required"] = list(raw["required"])
    if "properties" in raw:
        props = raw["properties"].items()
        out["properties"] = {k: _node(v, defs, f"{path}.{k}") for k, v in props}
    if "items" in raw:
        out["items"] = _node(raw["items"], defs, f"{path}[]")
    extra = raw.get("additionalProperties")
    if extra is True:  # dict[str, Any]: a layout the operator owns, kept as written
        out["x-kubernetes-preserve-unknown-fields"] = True
    elif isinstance(extra, dict):
        out["additionalProperties"] = _node(extra, defs, f"{path}.*", described=False)
    _check_bounds(out, path)
    return {k: out[k] for k in _ORDER if k in out}


def structural(model: type[BaseModel], path: str) -> Schema:
    """The CRD's structural OpenAPI v3 schema of model, rooted at path (for error messages)."""
    raw = model.model_json_schema(by_alias=True, schema_generator=_StoredDefaults)
    defs = raw.pop("$defs", {})
    return _node(raw, defs, path)


def _columns(columns: tuple[PrinterColumn, ...], status: Schema) -> list[Schema]:
    out = []
    for column in columns:
        node: Schema = {"properties": {"status": status}}
        for part in column.json_path.split(".")[1:]:
            node = node.get("properties", {}).get(part, {})
        kind = "date" if node.get("format") == "date-time" else node.get("type")
        if kind not in ("string", "integer", "number", "boolean", "date"):
            raise CrdError(
                f"printer column {column.name!r}: {column.json_path} is not a scalar status field"
            )
        out.append(
            {
                "name": column.name,
                "type": kind,
                "jsonPath": column.json_path,
                "description": column.description,
            }
        )
    return [*out, {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]


def _root(resource: CustomResource, spec: Schema, status: Schema) -> Schema:
    string = {"type": "string"}
    return {
        "description": " ".join(resource.description.split()),
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation "
                "of an object.",
                **string,
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this "
                "object represents.",
                **string,
            },
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def build_crd(resource: CustomResource = RESOURCE) -> Schema:
    """The whole CustomResourceDefinition of resource (one served, stored version)."""
    spec, status = structural(resource.spec, "spec"), structural(resource.status, "status")
    names: Schema = {
        "kind": resource.kind,
        "listKind": f"{resource.kind}List",
        "plural": resource.plural,
        "singular": resource.kind.lower(),
    }
    if resource.short_names:
        names["shortNames"] = list(resource.short_names)
    if resource.categories:
        names["categories"] = list(resource.categories)
    version = {
        "name": resource.version,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": _columns(resource.printer_columns, status),
        "schema": {"openAPIV3Schema": _root(resource, spec, status)},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource.plural}.{resource.group}"},
        "spec": {
            "group": resource.group,
            "names": names,
            "scope": "Namespaced",
            "versions": [version],
        },
    }


def crd_filename(resource: CustomResource = RESOURCE) -> str:
    """kubebuilder's name for a CRD file: <group>_<plural>.yaml."""
    return f"{resource.group}_{resource.plural}.yaml"


def render(crd: Schema) -> str:
    """The CRD as committed: a header, then YAML in the generator's key order."""
    return HEADER + yaml.safe_dump(crd, sort_keys=False, width=100, allow_unicode=True)


def outputs(out: Path, doc: Path | None) -> dict[Path, str]:
    """Every file the models generate, by path: the CRD and, with doc, its field reference."""
    crd = build_crd()
    files = {out / crd_filename(): render(crd)}
    if doc is not None:
        files[doc] = crddoc.render(crd)
    return files


def stale(files: dict[Path, str]) -> list[Path]:
    """The files whose text on disk is not what the models generate."""
    return [p for p, text in files.items() if not p.is_file() or p.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the CRD yaml (crds)")
    parser.add_argument("--doc", type=Path, help="also the Markdown field reference, here")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    files = outputs(args.out, args.doc)
    behind = stale(files)
    if args.check:
        for path in behind:
            print(f"stale: {path} is not what the models generate", file=sys.stderr)
        if behind:
            print(
                "run: make crd (regenerates the CRD, its chart copy and the doc)", file=sys.stderr
            )
        return 1 if behind else 0
    for path in behind:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
