"""``cor-build``'s configuration: one field a flag (``gqr_training.cliconfig``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gqr_serving.cor.index import MAX_PARTITIONS
from gqr_training.cliconfig import Rule, at_least, form, validate
from gqr_training.window import RESULT_FILE_HELP

SOURCES = ("logstore", "tsv", "trec")


def utc(text: str) -> datetime:
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


UTC_TIME = {"parse": utc, "rule": form("expected an ISO 8601 date/time (UTC), e.g. 2025-01-15")}


def parse_partitions(text: str) -> int | None:
    return None if text == "auto" else int(text)


@dataclass(kw_only=True)
class CORBuildConfig:
    """Everything ``cor-build`` is told: the sessions, the artifact and the index."""

    source: str = field(metadata={"help": "Session log format.", "choices": SOURCES})
    input: str = field(metadata={"help": "Log store root, TSV file, or TREC XML(.gz)."})
    start: datetime | None = field(
        default=None, metadata={"help": "Log store window start (ISO 8601, UTC).", **UTC_TIME}
    )
    end: datetime | None = field(
        default=None,
        metadata={"help": "Log store window end, exclusive (ISO 8601, UTC).", **UTC_TIME},
    )
    window_days: int | None = field(
        default=None,
        metadata={
            "help": "Log store window of this many days ending at --end (default: now); instead "
            "of --start."
        },
    )
    artifact_root: str = field(
        metadata={
            "help": "Artifact root (a folder, pvc://, s3://, gs://): publishes <root>/cor/<ver>/ "
            "whole, then CURRENT."
        }
    )
    version: str | None = field(
        default=None, metadata={"help": "Version name (default: vYYYYmmddTHHMMSSZ, UTC now)."}
    )
    max_gap_minutes: float = field(
        default=30.0,
        metadata={
            "help": "Split sessions on gaps longer than this; 0 disables splitting (default 30).",
            "rule": at_least(0),
        },
    )
    top_m: int = field(
        default=20,
        metadata={"help": "Successors kept per query (20).", "rule": at_least(1, "a whole number")},
    )
    min_count: int = field(
        default=1,
        metadata={"help": "Minimum pair count kept (1).", "rule": at_least(1, "a whole number")},
    )
    no_publish: bool = field(default=False, metadata={"help": "Write, but leave CURRENT as is."})
    index: bool = field(default=False, metadata={"help": "Also build and switch the Milvus index."})
    milvus_uri: str | None = field(
        default=None, metadata={"help": "milvus-lite .db folder or server URI (with --index)."}
    )
    milvus_token: str = field(
        default_factory=lambda: os.environ.get("MILVUS_TOKEN", ""),
        metadata={"help": "Milvus token (user:password or API key; default: $MILVUS_TOKEN)."},
    )
    prefix: str = field(
        default="gqr_cor",
        metadata={
            "help": "Milvus collection/alias prefix, one per deployment sharing a Milvus "
            "(gqr_cor); collections are <prefix>__<version>. The operator passes "
            "gqr_<namespace>_<name>_<hash>.",
            "flag": "--collection-prefix",
            "aliases": ("--prefix",),
        },
    )
    encoder: str = field(
        default="minilm", metadata={"help": "minilm | hashing[:DIM] | model folder."}
    )
    partitions: int | None = field(
        default=None,
        metadata={
            "help": "k-means partitions of the Milvus collection; searches visit the nearest few "
            "(default auto: none below 8,000 known queries, then one per 1,500, at most 256; "
            "0 = none).",
            "parse": parse_partitions,
            "rule": Rule(
                lambda v: 0 <= v <= MAX_PARTITIONS,
                f"expected auto or a whole number 0-{MAX_PARTITIONS}",
            ),
        },
    )
    keep_versions: int = field(
        default=2,
        metadata={"help": "Milvus versions kept (2).", "rule": at_least(1, "a whole number")},
    )
    no_progress: bool = field(default=False, metadata={"help": "Hide the progress bars."})
    result_file: Path | None = field(default=None, metadata={"help": RESULT_FILE_HELP})

    def __post_init__(self) -> None:
        validate(self)
