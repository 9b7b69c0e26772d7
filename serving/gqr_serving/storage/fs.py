"""A URI -> the filesystem holding it and the path within."""

from __future__ import annotations

import os
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from gqr_contracts.storage import PVC_DIR, pvc_path, scheme

PVC_ROOT_ENV = "GQR_PVC_ROOT"
"""Where pvc:// claims are mounted, when not /mnt/pvc (a test's folder)."""


def resolve(uri: str) -> tuple[Any, str]:
    """(filesystem, path) of ``uri``. Object stores take their credentials and endpoint from
    the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL;
    GOOGLE_APPLICATION_CREDENTIALS), which the operator fills from the Secret the CR names."""
    kind = scheme(uri)
    if kind == "hf":
        raise ValueError(f"{uri!r} is a model on a hub, not a folder: read it with model_dir()")
    if kind == "pvc":
        return LocalFileSystem(), pvc_path(uri, os.environ.get(PVC_ROOT_ENV, PVC_DIR))
    if kind in ("", "file"):
        return LocalFileSystem(), os.path.abspath(uri.removeprefix("file://"))
    # A fresh client: credentials are read from the environment each time, not from an
    # instance fsspec cached under other ones.
    fs, path = fsspec.core.url_to_fs(uri, skip_instance_cache=True)
    return fs, str(path)


def join(base: str, *parts: str) -> str:
    """``base`` with ``parts`` appended by '/' (a URI or a local path)."""
    out = base.rstrip("/")
    for part in parts:
        out += "/" + part.strip("/")
    return out


def is_local(fs: Any) -> bool:
    return isinstance(fs, LocalFileSystem)
