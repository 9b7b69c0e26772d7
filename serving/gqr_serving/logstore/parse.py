"""Turn one stored line into a record, or into a precise reason why it cannot be trusted."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from gqr_contracts.base import SCHEMA_VERSION
from gqr_serving.logstore.layout import Kind
from gqr_serving.records import SCHEMAS

KNOWN_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION})


class LineError(ValueError):
    """Why a line was skipped; ``counter`` names the ReaderStats field to bump."""

    def __init__(self, counter: str, reason: str) -> None:
        super().__init__(reason)
        self.counter = counter


def parse_line(kind: Kind, raw: bytes) -> BaseModel:
    """The record on a line (without its newline), or LineError."""
    model = SCHEMAS[kind]
    try:
        record: BaseModel = model.__pydantic_validator__.validate_json(raw)
    except ValidationError as e:
        # The fast path failed: find out why, for a report a person can act on.
        raise _diagnose(kind, raw, e) from None
    version = getattr(record, "schema_version", None)
    if version not in KNOWN_SCHEMA_VERSIONS:
        raise _unknown_version(version)
    return record


def _diagnose(kind: Kind, raw: bytes, error: ValidationError) -> LineError:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return LineError("non_utf8", f"bytes that are not UTF-8 at offset {e.start}")
    try:
        obj: Any = json.loads(text)
    except json.JSONDecodeError as e:
        return LineError("bad_json", f"not JSON ({e.msg} at column {e.colno})")
    if not isinstance(obj, dict):
        return LineError("bad_json", f"a JSON {type(obj).__name__}, not an object")
    if obj.get("schema_version", SCHEMA_VERSION) not in KNOWN_SCHEMA_VERSIONS:
        return _unknown_version(obj.get("schema_version"))
    if obj.get("kind", kind) != kind:
        return LineError("bad_schema", f"a {obj.get('kind')!r} record in the {kind!r} partition")
    details = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in error.errors()[:3]
    )
    return LineError("bad_schema", f"not a valid {kind} record ({details})")


def _unknown_version(version: object) -> LineError:
    known = ", ".join(str(v) for v in sorted(KNOWN_SCHEMA_VERSIONS))
    return LineError(
        "unknown_schema_version",
        f"schema_version {version!r} is unknown to this reader (it knows {known}); "
        "upgrade gqr_serving to read it",
    )
