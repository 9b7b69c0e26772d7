"""What every record and contract shares: a schema version, strictness, aware timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1


def _aware(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (UTC recommended)")
    return ts.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(_aware)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Record(BaseModel):
    """Base of every logged record: unknown fields refused, immutable, versioned."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: int = Field(SCHEMA_VERSION, description="Version of this record's schema.")


def field_path(loc: tuple[int | str, ...], root: str = "") -> str:
    """A pydantic error location as the user wrote it: ``instances[0].query``."""
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


def describe(exc: ValidationError, root: str = "", *, limit: int = 3) -> str:
    """The first ``limit`` errors, each ``field=value: what is accepted`` (the value when it is
    a scalar, shortened)."""
    parts = []
    for err in exc.errors()[:limit]:
        where = field_path(tuple(err["loc"]), root)
        value = err.get("input")
        if err["type"] != "missing" and (value is None or isinstance(value, str | int | float)):
            where += f"={_short(value)}"
        parts.append(f"{where}: {str(err['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts)


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"
