"""Write one COR version folder (transitions Parquet + manifest) and publish it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gqr_serving.cor.artifact import (
    FORMAT,
    MANIFEST,
    TRANSITIONS,
    check_version,
    cor_dir,
    version_dir,
    write_current,
)
from gqr_training.cor.extract import Transition


def new_version(root: str | os.PathLike[str], now: datetime | None = None) -> str:
    """``vYYYYmmddTHHMMSSZ`` (sorts by time), suffixed ``-N`` if that name is taken."""
    base = (now or datetime.now(UTC)).strftime("v%Y%m%dT%H%M%SZ")
    version, n = base, 1
    while (cor_dir(root) / version).exists():
        n += 1
        version = f"{base}-{n}"
    return version


def write_transitions(folder: Path, rows: Sequence[Transition]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "q": pa.array([r[0] for r in rows], pa.string()),
            "q_next": pa.array([r[1] for r in rows], pa.string()),
            "count": pa.array([r[2] for r in rows], pa.int64()),
        }
    )
    pq.write_table(table, folder / TRANSITIONS)


def write_artifact(
    root: str | os.PathLike[str],
    version: str,
    rows: Sequence[Transition],
    manifest: dict[str, Any],
) -> Path:
    """Write into a hidden temporary folder, then rename it into place (all or nothing)."""
    final = version_dir(root, check_version(version))
    if final.exists():
        raise FileExistsError(f"COR version {version!r} already exists at {final}")
    tmp = cor_dir(root) / f".tmp-{version}-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=False)
    try:
        write_transitions(tmp, rows)
        body = {"format": FORMAT, "version": version, "created": _now_iso(), **manifest}
        (tmp / MANIFEST).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def publish(root: str | os.PathLike[str], version: str) -> None:
    """Make ``version`` the one serving reads (atomic CURRENT swap)."""
    write_current(root, version)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
