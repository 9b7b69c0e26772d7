"""The COR artifact contract: folder layout, manifest, the CURRENT pointer, and loading.

Layout under an artifact root (local path)::

    <root>/cor/CURRENT                      the serving version's name (swapped atomically)
    <root>/cor/<version>/manifest.json      version, source, counts, parameters, encoder
    <root>/cor/<version>/transitions.parquet  q, q_next, count  (normalised, pruned)

A version folder appears by one ``rename`` of a fully written temporary folder, and CURRENT
is replaced with ``os.replace``, so a reader sees the old or the new version, never a mix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A COR version is named as every stored artifact version is (re-exported for cor-build).
from gqr_serving.storage.store import check_version as check_version

FORMAT = 1
MANIFEST = "manifest.json"
TRANSITIONS = "transitions.parquet"
CURRENT = "CURRENT"

Successors = dict[str, tuple[tuple[str, int], ...]]
"""q -> its successors (q_next, count), most frequent first."""


def cor_dir(root: str | os.PathLike[str]) -> Path:
    return Path(root) / "cor"


def version_dir(root: str | os.PathLike[str], version: str) -> Path:
    return cor_dir(root) / check_version(version)


def read_current(root: str | os.PathLike[str]) -> str | None:
    """The version CURRENT points at, or None when nothing was published yet."""
    try:
        text = (cor_dir(root) / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    return check_version(text) if text else None


def write_current(root: str | os.PathLike[str], version: str) -> None:
    """Point CURRENT at a complete version (its manifest must exist)."""
    if not (version_dir(root, version) / MANIFEST).exists():
        raise FileNotFoundError(f"COR version {version!r} has no {MANIFEST} under {root}")
    tmp = cor_dir(root) / f".{CURRENT}.{os.getpid()}.tmp"
    tmp.write_text(version + "\n")
    os.replace(tmp, cor_dir(root) / CURRENT)


def list_versions(root: str | os.PathLike[str]) -> list[str]:
    """Complete versions (with a manifest), oldest name first."""
    base = cor_dir(root)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / MANIFEST).is_file())


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


def load_artifact(root: str | os.PathLike[str], version: str | None = None) -> CORArtifact:
    """Load ``version`` (default: CURRENT) into memory."""
    import pyarrow.parquet as pq

    version = version or read_current(root)
    if version is None:
        raise FileNotFoundError(f"no COR version published under {cor_dir(root)} (no CURRENT)")
    folder = version_dir(root, version)
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
