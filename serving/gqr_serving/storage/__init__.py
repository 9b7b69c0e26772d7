"""One storage layer for every component: each URI form a GQRDeployment accepts
(`gqr_contracts.storage`) resolves the same way in the training Jobs, the gateway and the
servers.

- ``resolve(uri)``: an fsspec filesystem and path (a local folder, a mounted claim, S3 through
  s3fs, GCS through gcsfs; credentials only from the environment a Secret fills).
- ``ArtifactStore``: versions of an artifact under a root, published whole, then made
  ``CURRENT``; a reader never sees a half-written version, on a disk or an object store.
- ``model_dir(uri)``: a local folder holding a model, from any URI form, ``hf://`` included
  (``huggingface_hub.snapshot_download``, token from ``HF_TOKEN``), downloads cached.
"""

from gqr_serving.storage.fs import join, resolve
from gqr_serving.storage.models import model_dir
from gqr_serving.storage.store import ArtifactStore, StorageError, check_version

__all__ = ["ArtifactStore", "StorageError", "check_version", "join", "model_dir", "resolve"]
