"""The COR artifact contract: folder layout, manifest, the CURRENT pointer, and loading.

Layout under an artifact root (any URI form: a folder, pvc://, s3://, gs://)::

    <root>/cor/CURRENT                      the serving version's name
    <root>/cor/<version>/transitions.parquet  q, q_next, count  (normalised, pruned)
    <root>/cor/<version>/manifest.json      version, source, counts, parameters, encoder;
                                            written last: the version is complete with it

An `ArtifactStore` (gqr_serving.storage) whose completion marker is the manifest: a version
appears whole (one rename on a disk; the manifest, the last object written, on an object store)
and CURRENT names only complete versions, so a reader sees the old or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gqr_serving.storage import ArtifactStore

# A COR version is named as every stored artifact version is (re-exported for cor-build).
from gqr_serving.storage.store import check_version as check_version

FORMAT = 1
MANIFEST = "manifest.json"
TRANSITIONS = "transitions.parquet"
KIND = "cor"

Successors = dict[str, tuple[tuple[str, int], ...]]
"""q -> its successors (q_next, count), most frequent first."""

Root = str | os.PathLike[str]


def cor_store(root: Root) -> ArtifactStore:
    """The COR versions under an artifact root."""
    return ArtifactStore(str(root), KIND, marker=MANIFEST)


def read_current(root: Root) -> str | None:
    """The version CURRENT points at, or None when nothing was published yet."""
    return cor_store(root).current()


def write_current(root: Root, version: str) -> None:
    """Point CURRENT at a complete version (its manifest must exist)."""
    cor_store(root).set_current(version)


def list_versions(root: Root) -> list[str]:
    """Complete versions (with a manifest), oldest name first."""
    return cor_store(root).versions()


def local_version(root: Root, version: str) -> Path:
    """A local folder of a complete version: in place on a disk, else a cached download."""
    from gqr_serving.storage.models import cache_root

    return cor_store(root).fetch(cache_root() / "cor", version)


@dataclass(frozen=True)
class CORArtifact:
    """One loaded COR version: its manifest and the in-memory successor table."""

    version: str
    manifest: dict[str, Any]
    successors: Successors
    totals: dict[str, int] = field(repr=False)

    @property
    def queries(self) -> list[str]:
        """Known queries (those with at least one successor), in a stable order."""
        return sorted(self.successors)


def load_artifact(root: Root, version: str | None = None) -> CORArtifact:
    """Load ``version`` (default: CURRENT) into memory."""
    import pyarrow.parquet as pq

    version = version or read_current(root)
    if version is None:
        raise FileNotFoundError(
            f"no COR version published under {cor_store(root).uri} (no CURRENT)"
        )
    folder = local_version(root, version)
    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{folder / MANIFEST}: format {manifest.get('format')!r}, want {FORMAT}")
    table = pq.read_table(folder / TRANSITIONS, columns=["q", "q_next", "count"])
    return CORArtifact(
        version,
        manifest,
        *successors_from_columns(
            table.column("q").to_pylist(),
            table.column("q_next").to_pylist(),
            table.column("count").to_pylist(),
        ),
    )


def successors_from_columns(
    qs: list[str], nexts: list[str], counts: list[int]
) -> tuple[Successors, dict[str, int]]:
    """Group (q, q_next, count) rows into the successor table and per-query totals."""
    grouped: dict[str, list[tuple[str, int]]] = {}
    for q, nxt, c in zip(qs, nexts, counts, strict=True):
        grouped.setdefault(q, []).append((nxt, int(c)))
    successors: Successors = {}
    totals: dict[str, int] = {}
    for q, rows in grouped.items():
        rows.sort(key=lambda r: (-r[1], r[0]))
        successors[q] = tuple(rows)
        totals[q] = sum(c for _, c in rows)
    return successors, totals
