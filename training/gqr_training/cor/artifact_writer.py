"""Write one COR version folder (transitions Parquet + manifest) and publish it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gqr_serving.cor.artifact import FORMAT, MANIFEST, TRANSITIONS, check_version, cor_store
from gqr_serving.storage import ArtifactStore
from gqr_training.cor.extract import Transition


def new_version(root: str | os.PathLike[str], now: datetime | None = None) -> str:
    """``vYYYYmmddTHHMMSSZ`` (sorts by time), suffixed ``-N`` if that name is taken."""
    return cor_store(root).new_version(now)


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
) -> str:
    """Build the version in a local work folder, then publish it whole (not CURRENT yet);
    returns its URI."""
    store = cor_store(root)
    check_version(version)
    if store.fs.exists(f"{store.base}/{version}"):
        raise FileExistsError(
            f"COR version {version!r} already exists at {store.version_uri(version)}"
        )
    work = Path(tempfile.mkdtemp(prefix=f"gqr-cor-{version}-", dir=_work_parent(store)))
    try:
        write_transitions(work, rows)
        body = {"format": FORMAT, "version": version, "created": _now_iso(), **manifest}
        (work / MANIFEST).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        return store.publish(work, version, make_current=False, move=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _work_parent(store: ArtifactStore) -> str | None:
    """Next to the versions on a disk (the folder moves in by rename), else the temp dir."""
    if not store.local:
        return None
    Path(store.base).mkdir(parents=True, exist_ok=True)
    return store.base


def publish(root: str | os.PathLike[str], version: str) -> None:
    """Make ``version`` the one serving reads (CURRENT)."""
    cor_store(root).set_current(version)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
