"""Where a URI's bytes live: the URI forms a GQRDeployment accepts and the folder inside a pod
where the operator mounts a ``pvc://`` claim. The operator builds pods from it; every component
resolves URIs the same way through ``gqr_serving.storage``.

- ``pvc://<claim>/<path>``: a PersistentVolumeClaim, mounted at ``/mnt/pvc/<claim>``;
- ``s3://<bucket>/<key>``, ``gs://<bucket>/<key>``: object storage (fsspec: s3fs, gcsfs),
  credentials only from the Secret the CR references (environment variables of the pod);
- ``hf://<org>/<name>[@<revision>]``: a Hugging Face Hub model (read-only; token from a Secret);
- ``file:///<path>`` or a plain path: a local folder.
"""

from __future__ import annotations

PVC_DIR = "/mnt/pvc"
SCHEMES = ("pvc", "s3", "gs", "hf", "file")
OBJECT_SCHEMES = ("s3", "gs")


def scheme(uri: str) -> str:
    """The URI's scheme, "" for a plain path; a ValueError for one no component reads."""
    if "://" not in uri:
        return ""
    name = uri.split("://", 1)[0]
    if name not in SCHEMES:
        raise ValueError(f"{uri!r}: scheme {name!r} is not one of {', '.join(SCHEMES)}")
    return name


def pvc_path(uri: str, root: str = PVC_DIR) -> str:
    """The path of ``pvc://<claim>/<path>`` inside a pod that mounts the claim under ``root``."""
    claim, _, path = uri.removeprefix("pvc://").partition("/")
    if not claim:
        raise ValueError(f"{uri!r}: expected pvc://<claim>/<path>")
    return f"{root}/{claim}/{path}".rstrip("/")


def uri_of_path(path: str, root: str = PVC_DIR) -> str:
    """The inverse of `pvc_path` for what a Job reports: a path under a mounted claim becomes
    its ``pvc://`` URI, so other pods can mount it; anything else passes through."""
    prefix = root.rstrip("/") + "/"
    if path.startswith(prefix) and "://" not in path:
        claim, _, rest = path[len(prefix) :].partition("/")
        if claim:
            return f"pvc://{claim}/{rest}".rstrip("/")
    return path


def hf_repo(uri: str) -> tuple[str, str | None]:
    """``hf://org/name@rev`` -> (``org/name``, ``rev``); revision None when not given."""
    repo, _, revision = uri.removeprefix("hf://").partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ValueError(f"{uri!r}: expected hf://<org>/<name>[@<revision>]")
    return repo, revision or None
