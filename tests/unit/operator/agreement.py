"""Compare the pydantic model's JSON schema with the CRD's OpenAPI schema, node by node."""

from __future__ import annotations

from typing import Any

from tests.unit.operator.cases import CEL_TWINS
from tests.unit.operator.openapi import apply_defaults, spec_schema, validate

from gqr_operator.models import GQRDeploymentSpec

_KEYS = (
    "type",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
)


def pydantic_schema() -> dict[str, Any]:
    return GQRDeploymentSpec.model_json_schema(by_alias=True)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        extra = {k: v for k, v in node.items() if k != "$ref"}
        node = {**defs[node["$ref"].rsplit("/", 1)[-1]], **extra}
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            if rest.get("default", 0) is None:
                rest.pop("default")
            return {**_resolve(options[0], defs), **rest}
        return {**rest, "x-kubernetes-int-or-string": True}
    return node


def _facets(node: dict[str, Any]) -> dict[str, Any]:
    out = {k: node[k] for k in _KEYS if k in node}
    if "const" in node:
        out.update(type="string", enum=[node["const"]])
    if isinstance(node.get("exclusiveMinimum"), int | float) and "minimum" not in node:
        out["minimum"], out["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if "maxProperties" in node:
        out["maxProperties"] = node["maxProperties"]
    if node.get("x-kubernetes-int-or-string"):
        return {"int-or-string": True}
    if "default" in node and not isinstance(node["default"], dict | list):
        out["default"] = node["default"]
    if node.get("type") == "object":
        out["required"] = sorted(node.get("required", []))
    return out


def diff(crd: dict[str, Any], pyd: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    """Where the two schemas disagree on types, enums, ranges, lengths, defaults, fields."""
    pyd = _resolve(pyd, defs)
    want, got = _facets(crd), _facets(pyd)
    want.pop("pattern", None) if crd.get("x-kubernetes-int-or-string") else None
    out = [f"{path}: CRD {want} != model {got}"] if want != got else []
    crd_props, pyd_props = crd.get("properties", {}), pyd.get("properties", {})
    if set(crd_props) != set(pyd_props):
        out.append(f"{path}: fields CRD {sorted(crd_props)} != model {sorted(pyd_props)}")
    for key in set(crd_props) & set(pyd_props):
        out += diff(crd_props[key], pyd_props[key], defs, f"{path}.{key}")
    if "items" in crd:
        out += diff(crd["items"], pyd["items"], defs, f"{path}[]")
    if isinstance(crd.get("additionalProperties"), dict):
        out += diff(crd["additionalProperties"], pyd["additionalProperties"], defs, f"{path}.*")
    return out


def _nodes(value: Any, path: list[str]) -> list[Any]:
    if not path:
        return [value]
    head, rest = path[0], path[1:]
    if head.endswith("[]"):
        items = value.get(head[:-2]) if isinstance(value, dict) else None
        return [n for item in (items or []) for n in _nodes(item, rest)]
    if isinstance(value, list):
        return [n for item in value for n in _nodes(item, path)]
    if isinstance(value, dict) and head in value:
        return _nodes(value[head], rest)
    return []


def crd_errors(spec: dict[str, Any]) -> list[str]:
    """What the apiserver would say: structural errors, else the failing CEL rules' messages."""
    schema = spec_schema()
    errors = validate(spec, schema)
    if errors:
        return errors
    stored = apply_defaults(spec, schema)
    for path, twins in CEL_TWINS.items():
        node_schema = schema
        for part in path.split(".")[1:]:
            if part.endswith("[]"):  # the rule sits on each item of an array
                node_schema = node_schema["properties"][part[:-2]]["items"]
            else:
                node_schema = node_schema["properties"][part]
        rules = [r for r in node_schema["x-kubernetes-validations"] if "oldSelf" not in r["rule"]]
        for value in _nodes(stored, path.split(".")[1:]):
            errors += [r["message"] for r, ok in zip(rules, twins, strict=True) if not ok(value)]
    return errors
