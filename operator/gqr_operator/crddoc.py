"""Render a CRD's schema as a Markdown field reference (docs/reference/gqrdeployment.md).

gqr_operator.crdgen writes the page with the CRD it generates (`make crd`); `make lint` fails
when the committed page is stale.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_CONSTRAINTS = (
    ("enum", "one of {}"),
    ("minimum", ">= {}"),
    ("maximum", "<= {}"),
    ("minLength", "length >= {}"),
    ("maxLength", "length <= {}"),
    ("minItems", "items >= {}"),
    ("maxItems", "items <= {}"),
    ("maxProperties", "keys <= {}"),
    ("pattern", "matches `{}`"),
    ("format", "{}"),
)


def _cell(text: str, *, code: bool = False) -> str:
    """Escape what would break a Markdown table cell or be read as an HTML tag."""
    text = " ".join(text.split()).replace("|", "\\|")
    return text if code else re.sub(r"<(?=[A-Za-z/])", "&lt;", text)


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    kind = str(node.get("type", "any"))
    if kind == "array":
        return f"[]{_type(node['items'])}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string]{_type(node['additionalProperties'])}"
    return kind


def _constraints(node: dict[str, Any]) -> str:
    out = []
    for key, fmt in _CONSTRAINTS:
        if key in node:
            value = node[key]
            if key == "enum":
                value = ", ".join(f"`{v}`" for v in value)
            if key == "minimum" and node.get("exclusiveMinimum"):
                fmt = "> {}"
            out.append(_cell(fmt.format(value)))
    return "; ".join(out)


def _rows(node: dict[str, Any], path: str, required: bool) -> list[str]:
    default = ""
    if "default" in node:
        dumped = yaml.safe_dump(node["default"], default_flow_style=True, width=1000)
        default = f"`{dumped.strip().removesuffix('...').strip()}`"
    cells = [
        f"`{path}`",
        _type(node) + (" (required)" if required else ""),
        default,
        _constraints(node),
        _cell(str(node.get("description", ""))),
    ]
    rows = ["| " + " | ".join(cells) + " |"]
    needed = set(node.get("required", []))
    for key, sub in node.get("properties", {}).items():
        rows += _rows(sub, f"{path}.{key}", key in needed)
    if "items" in node and node["items"].get("properties"):
        item = node["items"]
        for key, sub in item["properties"].items():
            rows += _rows(sub, f"{path}[].{key}", key in set(item.get("required", [])))
    return rows


def _rules(node: dict[str, Any], path: str) -> list[str]:
    out = [
        f"| `{path}` | `{_cell(r['rule'], code=True)}` | {_cell(r['message'])} |"
        for r in node.get("x-kubernetes-validations", [])
    ]
    for key, sub in node.get("properties", {}).items():
        out += _rules(sub, f"{path}.{key}")
    if "items" in node:
        out += _rules(node["items"], f"{path}[]")
    return out


def render(crd: dict[str, Any]) -> str:
    """The Markdown page for one CRD (first version)."""
    spec = crd["spec"]
    version = spec["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    names = spec["names"]
    head = "| Field | Type | Default | Constraints | Description |\n|---|---|---|---|---|"
    lines = [
        f"# {names['kind']} reference",
        "",
        "<!-- Generated from the spec models by `make crd` (gqr_operator.crdgen); do not edit. -->",
        "",
        " ".join(schema["description"].split()),
        "",
        f"- API: `{spec['group']}/{version['name']}`, kind `{names['kind']}`, "
        f"scope {spec['scope']}",
        f"- Names: `{names['plural']}`, short names "
        + ", ".join(f"`{n}`" for n in names.get("shortNames", [])),
        "",
        "## Printer columns",
        "",
        "| Column | Type | JSONPath |",
        "|---|---|---|",
        *(
            f"| {c['name']} | {c['type']} | `{c['jsonPath']}` |"
            for c in version.get("additionalPrinterColumns", [])
        ),
    ]
    for part in ("spec", "status"):
        lines += ["", f"## {part}", "", head, *_rows(schema["properties"][part], part, False)]
    lines += ["", "## Validation rules (CEL)", "", "| Field | Rule | Message |", "|---|---|---|"]
    lines += _rules(schema["properties"]["spec"], "spec")
    return "\n".join(lines) + "\n"
