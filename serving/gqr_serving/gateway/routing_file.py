"""Loading the routing document (:mod:`gqr_contracts.routing`) from its file: JSON or YAML,
errors that name the file and the field; :class:`WatchedFile`, the poll-and-reload loop the
routing table and the blocklist share.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import ValidationError

from gqr_contracts.base import describe
from gqr_contracts.routing import RoutingConfig

log = logging.getLogger("gqr_serving.gateway")
T = TypeVar("T")


def file_identity(path: Path | None) -> tuple[int, int, int, int] | None:
    """Identity of the file behind ``path`` (device, inode, mtime, size), following symlinks:
    a ConfigMap update swaps the ``..data`` symlink, giving a new inode even with the same
    mtime. None when there is no such file."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class WatchedFile:
    """A configuration file reloaded when it changes (the routing table, the blocklist).

    Subclasses read the file in :meth:`reload` through :meth:`_load` and raise ``ValueError``
    (naming the file and the field) to keep the version in force. :meth:`watch` polls every
    ``poll_s`` seconds and reports each reload attempt as ``"ok"`` or ``"error"``.
    """

    what = "file"

    def __init__(self, path: Path | None, poll_s: float) -> None:
        self.path, self.poll_s = path, poll_s
        self.last_error: str | None = None
        self._signature = file_identity(path)

    def changed(self) -> bool:
        return self.path is not None and file_identity(self.path) != self._signature

    def _load(self, load: Callable[[Path], T]) -> T:
        """``load(path)``, remembering this version of the file and the error, if any."""
        assert self.path is not None
        self._signature = file_identity(self.path)
        try:
            value = load(self.path)
        except ValueError as exc:
            self.last_error = str(exc)
            raise
        self.last_error = None
        return value

    def reload(self) -> object:
        raise NotImplementedError

    async def watch(self, on_result: Callable[[str], None] | None = None) -> None:
        """Poll the file forever; reload on change; ``on_result("ok" | "error")`` per attempt."""
        while True:
            await asyncio.sleep(self.poll_s)
            if not self.changed():
                continue
            try:
                self.reload()
                result = "ok"
            except ValueError as exc:
                log.error("%s reload failed; keeping the previous one: %s", self.what, exc)
                result = "error"
            if on_result is not None:
                on_result(result)


class RoutingError(ValueError):
    """The routing file is missing, unparsable or invalid; the message says where."""


def parse_routing(text: str, source: str = "<routing>") -> RoutingConfig:
    """Parse JSON or YAML routing text; :class:`RoutingError` names the file and field."""
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise RoutingError(f"{source}: not valid JSON/YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RoutingError(f"{source}: expected a mapping with 'arms', got {type(data).__name__}")
    try:
        return RoutingConfig.model_validate(data)
    except ValidationError as exc:
        raise RoutingError(f"{source}: {describe(exc, limit=10)}") from None


def load_routing(path: Path) -> RoutingConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutingError(f"{path}: cannot read the routing file: {exc}") from None
    return parse_routing(text, str(path))
