"""The logged records shared by serving (writes) and training (reads): one definition each.
A Job's result (`gqr_contracts.job.JobResult`) is logged with them.

Every record carries ``schema_version``; a reader accepts the versions it knows and reports the
others. ``python -m gqr_serving.records --out DIR`` exports the JSON Schemas.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)

from gqr_contracts.base import SCHEMA_VERSION, Record, Timestamp
from gqr_contracts.job import JobResult


class SideInfo(BaseModel):
    """Side information that went into the prompt of one impression."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    history: list[str] = Field(
        default_factory=list, description="Earlier queries of the session, oldest first."
    )
    ai_response: str | None = Field(
        None, description="The AI answer the suggestions follow, if any."
    )
    cooccurring: list[str] = Field(
        default_factory=list, description="Co-occurring queries retrieved from logs (COR)."
    )
    documents: list[str] = Field(default_factory=list, description="Retrieved documents, if any.")
    prefix: str | None = Field(None, description="The typed prefix (query completion).")


class ImpressionRecord(Record):
    """One list of recommended queries shown to a user."""

    kind: Literal["impression"] = "impression"
    impression_id: str = Field(min_length=1, max_length=128)
    ts: Timestamp
    deployment: str = Field(description="GQRDeployment name (or 'local').")
    task: str = Field(description="Task preset name, e.g. 'suggestion'.")
    arm: str = Field(description="Routing arm that served it: 'stable', 'canary', ...")
    model_version: str
    session_id: str
    user_key: str = Field(description="Hashed user/session key; never the raw key.")
    query: str
    side_info: SideInfo = Field(default_factory=SideInfo)
    aux_texts: dict[str, str] = Field(default_factory=dict)
    queries: list[str] = Field(description="The recommended queries, in display order.")
    fallback: bool = Field(False, description="True when served without the LLM (COR only).")


class ClickRecord(Record):
    """A click on one shown query. ``position`` is 0-based into ``ImpressionRecord.queries``."""

    kind: Literal["click"] = "click"
    impression_id: str = Field(min_length=1, max_length=128)
    position: int = Field(ge=0, le=63)
    ts: Timestamp
    invalid: str | None = Field(
        None,
        max_length=32,
        description="Why the gateway judged it invalid traffic (gqr_serving.invalid), e.g. "
        "'too_fast'; absent for a valid click. Logged, never counted.",
    )

    @model_serializer(mode="wrap")
    def _omit_valid(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        # A valid click is written exactly as before the field existed, so readers that
        # predate it still read every valid click.
        out: dict[str, Any] = handler(self)
        if out.get("invalid", 0) is None:
            del out["invalid"]
        return out


class QueryLogRecord(Record):
    """One query typed by a user: the session/query log line COR is built from."""

    kind: Literal["query"] = "query"
    session_id: str
    ts: Timestamp
    query: str
    user_key: str = ""


LogRecord = Annotated[
    ImpressionRecord | ClickRecord | QueryLogRecord | JobResult, Field(discriminator="kind")
]
LOG_RECORD: TypeAdapter[Any] = TypeAdapter(LogRecord)

SCHEMAS: dict[str, type[BaseModel]] = {
    "impression": ImpressionRecord,
    "click": ClickRecord,
    "query": QueryLogRecord,
    "job_result": JobResult,
}


def export_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in SCHEMAS.items():
        path = out / f"{name}.v{SCHEMA_VERSION}.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), indent=2) + "\n")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export the GQR record JSON Schemas.")
    parser.add_argument("--out", type=Path, default=Path("schemas"))
    for p in export_schemas(parser.parse_args(argv).out):
        print(p)


if __name__ == "__main__":
    main()
