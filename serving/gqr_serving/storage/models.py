"""A model's local folder from any URI form: what ``from_pretrained`` and the servers load."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from gqr_contracts.storage import hf_repo, scheme
from gqr_serving.storage.fs import is_local, resolve
from gqr_serving.storage.store import StorageError

CACHE_ENV = "GQR_MODEL_CACHE"
"""Where downloaded models are kept (a volume in a pod)."""
_DONE = ".gqr-complete"


def cache_root() -> Path:
    """$GQR_MODEL_CACHE, else $XDG_CACHE_HOME/gqr/models, else ~/.cache/gqr/models."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gqr" / "models"


def model_dir(uri: str, *, cache: Path | None = None, require: tuple[str, ...] = ()) -> Path:
    """A local folder holding the model at ``uri``:

    - a plain path, ``file://`` or ``pvc://``: the folder itself;
    - ``s3://`` or ``gs://``: downloaded once into the cache (credentials from the environment);
    - ``hf://org/name[@revision]``: ``huggingface_hub.snapshot_download`` into the cache, with
      the token in ``HF_TOKEN`` (the endpoint in ``HF_ENDPOINT``).

    ``require`` names files the folder must hold (e.g. ``config.json``): a model without them
    fails here, naming the URI, not deep inside a loader. Errors are StorageError or
    FileNotFoundError and name the URI."""
    cache = cache or cache_root()
    local = _hf(uri, cache) if scheme(uri) == "hf" else _fetch(uri, cache)
    missing = [name for name in require if not (local / name).exists()]
    if missing:
        raise StorageError(f"{uri}: the model lacks {', '.join(missing)}")
    return local


def _hf(uri: str, cache: Path) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo, revision = hf_repo(uri)
    try:
        folder = snapshot_download(
            repo_id=repo,
            revision=revision,
            cache_dir=str(cache / "hf"),
            token=os.environ.get("HF_TOKEN") or False,
            endpoint=os.environ.get("HF_ENDPOINT") or None,
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        # The client falls back to its cache and says "cannot find"; the Hub's answer (not
        # found, gated, unreachable) is the cause it kept.
        cause: BaseException = exc
        while cause.__cause__ is not None or cause.__context__ is not None:
            cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
        why = (str(cause).splitlines() or [""])[0]
        gated = any(code in why for code in ("401", "403", "404"))
        hint = (
            " (no HF_TOKEN given: is the model gated?)"
            if gated and not os.environ.get("HF_TOKEN")
            else ""
        )
        raise StorageError(f"{uri}: {type(cause).__name__}: {why}{hint}"[:500]) from exc
    return Path(folder)


def _fetch(uri: str, cache: Path) -> Path:
    fs, path = resolve(uri)
    if is_local(fs):
        if not os.path.isdir(path):
            raise FileNotFoundError(f"{uri}: no such folder ({path})")
        return Path(path)
    local = cache / "objects" / hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:24]
    if (local / _DONE).exists():
        return local
    tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}")
    try:
        if not fs.isdir(path):
            raise FileNotFoundError(f"{uri}: no such folder")
        fs.get(path.rstrip("/") + "/", str(tmp), recursive=True)
        (tmp / _DONE).write_text(uri + "\n")
        local.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, local)
    except FileNotFoundError:
        raise
    except Exception as exc:  # credentials, endpoint, permissions: name the URI
        raise StorageError(f"{uri}: {type(exc).__name__}: {exc}"[:500]) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return local
