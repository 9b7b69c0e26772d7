"""Versioned artifacts under a root URI, published whole and switched atomically:

    <root>/<kind>/<version>/...          the files
    <root>/<kind>/<version>/<marker>     written last (default ``_COMPLETE``: the file list)
    <root>/<kind>/CURRENT                the version readers get

A version counts only once its marker exists, and CURRENT only ever names such a version, so a
reader sees the old or the new version whole. On a local disk the version appears by one rename
and CURRENT by ``os.replace``; on an object store every object appears whole on PUT, so the
marker, written after every file, is what makes the version visible.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gqr_contracts.storage import scheme
from gqr_serving.storage.fs import is_local, join, resolve

COMPLETE = "_COMPLETE"
CURRENT = "CURRENT"
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class StorageError(RuntimeError):
    """A store could not be read or written; the message names the URI."""


def check_version(version: str) -> str:
    if not _VERSION.match(version):
        raise ValueError(
            f"version {version!r} is not valid: use 1-64 letters, digits, '_', '-', '.', "
            "starting with a letter or digit"
        )
    return version


def _listing(version: str, files: dict[str, Path]) -> bytes:
    sizes = {name: path.stat().st_size for name, path in sorted(files.items())}
    return json.dumps({"version": version, "files": sizes}, indent=2, sort_keys=True).encode()


class ArtifactStore:
    """The versions of one kind of artifact (``cor``, ``ctr``, ``llm``) under ``root``."""

    def __init__(self, root: str, kind: str, *, marker: str = COMPLETE) -> None:
        self.marker = marker
        root = root or "."  # a bare name (`--out ctr`) is a folder of the working directory
        self.fs, self.base = resolve(join(root, kind))
        # A plain path is reported absolute (other pods and processes read it); URIs as given.
        self.uri = self.base if scheme(root) == "" else join(root, kind)

    @classmethod
    def at(cls, uri: str, *, marker: str = COMPLETE) -> ArtifactStore:
        """The store whose versions live directly under ``uri`` (``<root>/<kind>``)."""
        root, _, kind = str(uri).rstrip("/").rpartition("/")
        if not kind:
            raise ValueError(f"{uri!r}: expected <root>/<kind>")
        return cls(root, kind, marker=marker)

    @property
    def local(self) -> bool:
        """Whether the store is a local folder (a disk or a mounted claim)."""
        return is_local(self.fs)

    def version_uri(self, version: str) -> str:
        return join(self.uri, check_version(version))

    def _path(self, *parts: str) -> str:
        return join(self.base, *parts)

    # -- reading ------------------------------------------------------------------------

    def is_complete(self, version: str) -> bool:
        return bool(self._call(self.fs.exists, self._path(check_version(version), self.marker)))

    def current(self) -> str | None:
        """The version CURRENT names, or None before the first publish."""
        try:
            text = self._call(self.fs.cat_file, self._path(CURRENT)).decode().strip()
        except FileNotFoundError:
            return None
        return check_version(text) if text else None

    def versions(self) -> list[str]:
        """Complete versions, oldest name first."""
        try:
            entries = self._call(self.fs.ls, self.base, detail=False)
        except FileNotFoundError:
            return []
        names = sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)
        return [n for n in names if _VERSION.match(n) and self.is_complete(n)]

    def _require_complete(self, version: str) -> None:
        if not self.is_complete(version):
            where = self.version_uri(version)
            raise FileNotFoundError(f"{where} is not a complete version (no {self.marker})")

    def read_text(self, version: str, name: str) -> str:
        """One file of a complete version."""
        self._require_complete(version)
        return bytes(self._call(self.fs.cat_file, self._path(version, name))).decode()

    def fetch(self, dest: Path, version: str | None = None) -> Path:
        """A local copy of ``version`` (default: CURRENT) in ``dest/<version>``; a copy made
        before is reused. FileNotFoundError names the store when there is nothing to fetch."""
        version = version or self.current()
        if version is None:
            raise FileNotFoundError(f"nothing published under {self.uri} (no {CURRENT})")
        self._require_complete(version)
        local = Path(dest) / version
        if is_local(self.fs):
            return Path(self._path(version))
        if (local / self.marker).exists():
            return local
        tmp = Path(dest) / f".{version}.{uuid.uuid4().hex[:8]}"
        try:
            self._call(self.fs.get, self._path(version) + "/", str(tmp), recursive=True)
            os.replace(tmp, local)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return local

    # -- writing ------------------------------------------------------------------------

    def new_version(self, now: datetime | None = None) -> str:
        """``vYYYYmmddTHHMMSSZ`` (sorts by time), suffixed ``-N`` if that name is taken."""
        base = (now or datetime.now(UTC)).strftime("v%Y%m%dT%H%M%SZ")
        version, n = base, 1
        while self._call(self.fs.exists, self._path(version)):
            n += 1
            version = f"{base}-{n}"
        return version

    def publish(
        self, folder: Path, version: str, *, make_current: bool = True, move: bool = False
    ) -> str:
        """Copy the files of local ``folder`` in as ``version`` (the marker last: the folder's
        own file of that name, or a listing of the files), then point CURRENT at it. Returns
        the version's URI. A version that exists already is refused. ``move``: a local store
        may take ``folder`` itself by one rename (same filesystem) instead of a copy."""
        check_version(version)
        if self._call(self.fs.exists, self._path(version)):
            raise FileExistsError(f"{self.version_uri(version)} exists already")
        folder = Path(folder)
        files = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
        marker = files.pop(self.marker, None)
        body = marker.read_bytes() if marker else _listing(version, files)
        if is_local(self.fs):
            self._publish_local(folder, version, body, move)
        else:
            for name, path in sorted(files.items()):
                self._call(self.fs.put_file, str(path), self._path(version, name), missing=False)
            self._call(self.fs.pipe_file, self._path(version, self.marker), body, missing=False)
        if make_current:
            self.set_current(version)
        return self.version_uri(version)

    def _publish_local(self, folder: Path, version: str, marker: bytes, move: bool) -> None:
        base = Path(self.base)
        base.mkdir(parents=True, exist_ok=True)
        if move and folder.stat().st_dev == base.stat().st_dev:
            (folder / self.marker).write_bytes(marker)
            os.rename(folder, base / version)
            return
        tmp = base / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(folder, tmp)
            (tmp / self.marker).write_bytes(marker)
            os.rename(tmp, base / version)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def set_current(self, version: str) -> None:
        """Point CURRENT at a complete version."""
        self._require_complete(version)
        if is_local(self.fs):
            tmp = Path(self._path(f".{CURRENT}.{uuid.uuid4().hex[:8]}.tmp"))
            tmp.write_text(version + "\n")
            os.replace(tmp, self._path(CURRENT))
            return
        self._call(self.fs.pipe_file, self._path(CURRENT), (version + "\n").encode(), missing=False)

    def _call(self, fn: Any, *args: Any, missing: bool = True, **kwargs: Any) -> Any:
        """``fn`` with errors that name the store. A FileNotFoundError passes through when
        ``missing`` (a reader asking for what may not exist); anything else (no credentials, no
        bucket, the endpoint down) becomes a StorageError."""
        try:
            return fn(*args, **kwargs)
        except FileNotFoundError:
            if missing:
                raise
            raise StorageError(f"{self.uri}: not found (does the bucket exist?)") from None
        except Exception as exc:  # botocore and google-auth errors are not all OSErrors
            raise StorageError(f"{self.uri}: {type(exc).__name__}: {exc}"[:500]) from exc
