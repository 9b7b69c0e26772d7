"""A small validator and defaulter for the CRD's structural OpenAPI v3 schema.

Covers what crds/ uses (types, int-or-string, enum, pattern, ranges, lengths, required,
unknown fields, maps, preserve-unknown-fields) so unit tests need neither a cluster nor
another package. CEL rules are not evaluated here: see cases.py and the CEL twins.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
CRD_PATH = ROOT / "crds" / "gqr.dev_gqrdeployments.yaml"
SAMPLES = sorted((ROOT / "crds" / "samples").glob("*.yaml"))
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def load_crd() -> dict[str, Any]:
    with CRD_PATH.open() as f:
        return dict(yaml.safe_load(f))


def root_schema(crd: dict[str, Any] | None = None) -> dict[str, Any]:
    version = (crd or load_crd())["spec"]["versions"][0]
    return dict(version["schema"]["openAPIV3Schema"])


def spec_schema() -> dict[str, Any]:
    return dict(root_schema()["properties"]["spec"])


def load_sample(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return dict(yaml.safe_load(f))


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, str | int) and not isinstance(value, bool)
    expected = _TYPES[schema["type"]]
    if isinstance(value, bool) and schema["type"] != "boolean":
        return False
    return isinstance(value, expected)


def validate(value: Any, schema: dict[str, Any], path: str = "spec") -> list[str]:
    """Errors as 'path: what', empty when value is valid (CEL rules not evaluated)."""
    if "type" not in schema and not schema.get("x-kubernetes-int-or-string"):
        return []
    if not _type_ok(value, schema):
        return [f"{path}: {value!r} is not of type {schema.get('type', 'int-or-string')}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{path}: longer than {schema['maxLength']}")
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        low = schema.get("minimum")
        if low is not None and (value < low or (schema.get("exclusiveMinimum") and value == low)):
            errors.append(f"{path}: {value} below minimum {low}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} above maximum {schema['maximum']}")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], f"{path}[{i}]")
        if schema.get("x-kubernetes-list-type") == "map":
            keys = [tuple(i.get(k) for k in schema["x-kubernetes-list-map-keys"]) for i in value]
            errors += [f"{path}: duplicate key {k}" for k in set(keys) if keys.count(k) > 1]
    if isinstance(value, dict):
        errors += _validate_object(value, schema, path)
    return errors


def _validate_object(value: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
    errors = [f"{path}.{k}: required" for k in schema.get("required", []) if k not in value]
    if len(value) > schema.get("maxProperties", len(value)):
        errors.append(f"{path}: more than {schema['maxProperties']} properties")
    props = schema.get("properties")
    for key, item in value.items():
        if props is not None and key in props:
            errors += validate(item, props[key], f"{path}.{key}")
        elif "additionalProperties" in schema:
            errors += validate(item, schema["additionalProperties"], f"{path}.{key}")
        elif not schema.get("x-kubernetes-preserve-unknown-fields"):
            errors.append(f"{path}.{key}: unknown field")
    return errors


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """What the apiserver stores: defaults filled in, recursively, as it does."""
    value = copy.deepcopy(value)
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = apply_defaults(value[key], sub)
        if "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
            for key in value:
                value[key] = apply_defaults(value[key], schema["additionalProperties"])
    elif isinstance(value, list) and "items" in schema:
        value = [apply_defaults(item, schema["items"]) for item in value]
    return value


def walk(schema: dict[str, Any], path: str = "spec") -> list[tuple[str, dict[str, Any]]]:
    """Every (path, schema) node below and including schema."""
    nodes = [(path, schema)]
    for key, sub in schema.get("properties", {}).items():
        nodes += walk(sub, f"{path}.{key}")
    if "items" in schema:
        nodes += walk(schema["items"], f"{path}[]")
    return nodes
