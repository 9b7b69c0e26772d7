"""Find and load task presets from YAML: the built-in ``tasks/`` folder and user folders.

Search order for a name: the ``extra_dirs`` argument, then the folders listed in the
``GQR_PRESET_DIRS`` environment variable (``os.pathsep``-separated), then the built-ins. So a
mounted ConfigMap can add a task, or override a built-in one, without code.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from gqr_serving.prompt.presets import (
    AuxTextSpec,
    Constraints,
    QueryCount,
    SectionSpec,
    TaskPreset,
)

ENV_VAR = "GQR_PRESET_DIRS"
BUILTIN_DIR = Path(__file__).parent / "tasks"
_SUFFIXES = (".yaml", ".yml")
_NESTED: dict[str, type[BaseModel]] = {
    "sections": SectionSpec,
    "aux_texts": AuxTextSpec,
    "num_queries": QueryCount,
    "constraints": Constraints,
}

PathLike = str | os.PathLike[str]


class PresetError(ValueError):
    """A preset file is missing, unreadable or invalid; the message names file and field."""


def _search_dirs(extra_dirs: Sequence[PathLike]) -> list[Path]:
    env = [d for d in os.environ.get(ENV_VAR, "").split(os.pathsep) if d]
    return [*(Path(d) for d in extra_dirs), *(Path(d) for d in env), BUILTIN_DIR]


def _preset_files(directory: Path) -> Iterable[Path]:
    if directory.is_dir():
        yield from sorted(p for p in directory.iterdir() if p.suffix in _SUFFIXES)


def list_presets(*, extra_dirs: Sequence[PathLike] = ()) -> list[str]:
    """The names of every preset that :func:`load_preset` can find, sorted."""
    return sorted({p.stem for d in _search_dirs(extra_dirs) for p in _preset_files(d)})


def load_preset(name: str | os.PathLike[str], *, extra_dirs: Sequence[PathLike] = ()) -> TaskPreset:
    """Load a preset by name (searching the preset folders) or from a YAML file path."""
    text = os.fspath(name)
    if text.endswith(_SUFFIXES) or os.sep in text or "/" in text:
        return load_preset_file(text)
    dirs = _search_dirs(extra_dirs)
    for directory in dirs:
        for suffix in _SUFFIXES:
            path = directory / f"{text}{suffix}"
            if path.is_file():
                return load_preset_file(path)
    known = ", ".join(list_presets(extra_dirs=extra_dirs)) or "none"
    searched = ", ".join(str(d) for d in dirs)
    raise PresetError(f"unknown task preset {text!r}; known presets: {known} (searched {searched})")


def load_preset_file(path: PathLike) -> TaskPreset:
    """Load and validate one preset YAML file; re-read only when the file changes."""
    file = Path(path)
    try:
        stat = file.stat()
    except OSError as exc:
        raise PresetError(f"preset file {file}: cannot read it ({exc.strerror})") from exc
    return _load_cached(str(file.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=128)
def _load_cached(path: str, _mtime_ns: int, _size: int) -> TaskPreset:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PresetError(f"preset file {path}: not readable YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PresetError(
            f"preset file {path}: the top level must be a mapping of preset fields, "
            f"got {type(data).__name__}; accepted fields: {', '.join(TaskPreset.model_fields)}"
        )
    stem = Path(path).stem
    data.setdefault("name", stem)
    if data["name"] != stem:
        raise PresetError(
            f"preset file {path}: field 'name' = {data['name']!r} must equal the file name "
            f"{stem!r}, so that the preset can be found by name"
        )
    try:
        return TaskPreset.model_validate(data)
    except ValidationError as exc:
        raise PresetError(_describe(path, exc)) from exc


def _describe(path: str, exc: ValidationError) -> str:
    lines = [f"preset file {path}: {exc.error_count()} invalid field(s)"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        line = f"  field {loc!r} = {_short(err.get('input'))}: {err['msg']}"
        if err["type"] == "extra_forbidden":
            line += f"; accepted fields here: {', '.join(_accepted(err['loc']))}"
        lines.append(line)
    return "\n".join(lines)


def _accepted(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = TaskPreset
    if len(loc) > 1 and isinstance(loc[0], str) and loc[0] in _NESTED:
        model = _NESTED[loc[0]]
    return list(model.model_fields)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
