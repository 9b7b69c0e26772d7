"""Loading the routing document (:mod:`gqr_contracts.routing`) from its file: JSON or YAML,
errors that name the file and the field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from gqr_contracts.base import describe
from gqr_contracts.routing import RoutingConfig


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
