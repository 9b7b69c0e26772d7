"""Where a pipeline Job builds its result, and how the result lands in its store.

A Job builds in a local work folder, then publishes the folder whole to its store (any URI
form, `gqr_serving.storage.ArtifactStore`): readers see the old versions or the new one
complete, never a half-written one, on a claim and on an object store alike.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from gqr_serving.storage import ArtifactStore

WORK_ENV = "GQR_WORK_DIR"
"""A local volume for work folders when the store is remote (the operator mounts one)."""


def work_folder(store: ArtifactStore, version: str, given: Path | None = None) -> Path:
    """``given``; else, for a store on a disk, ``<store>/.work/<version>`` (the same volume:
    a retried pod finds its checkpoints and the result moves in by one rename); else
    ``$GQR_WORK_DIR/<kind>-<version>`` or a new temporary folder."""
    if given is not None:
        folder = Path(given)
    elif store.local:
        folder = Path(store.base) / ".work" / version
    elif os.environ.get(WORK_ENV):
        folder = Path(os.environ[WORK_ENV]) / f"{store.uri.rsplit('/', 1)[-1]}-{version}"
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"gqr-{version}-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def published_path(store: ArtifactStore, version: str, built: Path, work: Path) -> Path:
    """A local folder holding the published version: the store's own on a disk (its work
    folder, empty now, goes), else the copy it was built from (in the work folder, which a
    pod's scratch volume takes with it)."""
    if not store.local:
        return built
    if work != built and not any(work.iterdir()):
        work.rmdir()
        with contextlib.suppress(OSError):  # the last one out takes .work too
            work.parent.rmdir()
    return Path(store.base) / version


def publish_once(store: ArtifactStore, folder: Path, version: str) -> str:
    """Publish ``folder`` as ``version`` (moved in on a disk), or, when a retried pod finds it
    published already, keep that one; returns the version's URI."""
    if store.is_complete(version):
        return store.version_uri(version)
    return store.publish(folder, version, make_current=False, move=True)


def input_dir(uri: str, *, require: tuple[str, ...] = ()) -> str:
    """A Job's input model or artifact as a local folder (any URI form, hf:// included)."""
    from gqr_serving.storage import model_dir

    return str(model_dir(uri, require=require))
