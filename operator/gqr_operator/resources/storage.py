"""How a pod reaches a URI. Components that read URIs themselves (the gqr images, through
gqr_serving.storage) get pvc:// as a mounted folder and everything else as is, with the object
store's settings and Secrets in their environment; third-party servers get s3:// and gs://
fetched into an emptyDir by an init container whose credentials come only from a Secret
reference (envFrom)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gqr_contracts.storage import PVC_DIR, scheme
from gqr_contracts.storage import pvc_path as claim_path
from gqr_contracts.storage import uri_of_path as uri_for_path
from gqr_operator.models.common import SecretRef
from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources import defaults
from gqr_operator.resources.naming import dns_label

MODELS_DIR = "/mnt/models"
WORK_DIR = "/cache/work"
"""Where a Job builds what it publishes to a remote store (the scratch cache volume)."""
MODEL_CACHE = "/cache/gqr/models"
"""Where a Job keeps the models and artifacts it downloads."""

__all__ = [
    "PVC_DIR",
    "Mounts",
    "fetched_path",
    "is_remote",
    "pvc_path",
    "storage_uri",
    "store_env",
    "store_secrets",
    "uri_for_path",
]


@dataclass
class Mounts:
    """Volumes, mounts and init containers collected while resolving URIs for one pod."""

    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    init_containers: list[dict[str, Any]] = field(default_factory=list)

    def add_volume(self, volume: dict[str, Any], mount: dict[str, Any]) -> None:
        """Add a volume once; a claim asked for again read-write (logs and artifacts on one
        claim, say) is mounted read-write, since a pod mounts each volume once."""
        known = next((v for v in self.volumes if v["name"] == volume["name"]), None)
        if known is None:
            self.volumes.append(volume)
            self.mounts.append(mount)
            return
        if not mount.get("readOnly", False):
            for m in self.mounts:
                if m["name"] == volume["name"]:
                    m["readOnly"] = False
            claim = known.get("persistentVolumeClaim")
            if claim is not None:
                claim["readOnly"] = False


def pvc_path(uri: str, mounts: Mounts, *, read_only: bool = True) -> str:
    """Mount the claim of a pvc://<claim>/<path> URI and return the local path."""
    claim = uri.removeprefix("pvc://").partition("/")[0]
    vol = dns_label(f"pvc-{claim}")
    mounts.add_volume(
        {"name": vol, "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}},
        {"name": vol, "mountPath": f"{PVC_DIR}/{claim}", "readOnly": read_only},
    )
    return claim_path(uri)


def storage_uri(uri: str, mounts: Mounts, *, read_only: bool = False) -> str:
    """For code that reads URIs itself (gqr images): pvc:// becomes a mounted local path,
    everything else passes through."""
    return pvc_path(uri, mounts, read_only=read_only) if uri.startswith("pvc://") else uri


def is_remote(uri: str) -> bool:
    """An object store (s3://, gs://), not a folder in the pod."""
    return scheme(uri) in ("s3", "gs")


def store_env(spec: GQRDeploymentSpec) -> list[dict[str, Any]]:
    """For the gqr images: the object store's endpoint and region (the spec keeps the logs' and
    the artifacts' equal), and where downloads are cached and publications built."""
    env = [
        {"name": "GQR_MODEL_CACHE", "value": MODEL_CACHE},
        {"name": "GQR_WORK_DIR", "value": WORK_DIR},
    ]
    endpoint = spec.artifacts.endpoint or spec.logs.endpoint
    region = spec.artifacts.region or spec.logs.region
    if endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": endpoint})
    if region:
        env.append({"name": "AWS_DEFAULT_REGION", "value": region})
    return env


def store_secrets(spec: GQRDeploymentSpec) -> list[dict[str, Any]]:
    """envFrom of the Secrets the logs and artifacts stores name (each once)."""
    refs = [r.name for r in (spec.logs.secret_ref, spec.artifacts.secret_ref) if r is not None]
    return [{"secretRef": {"name": name}} for name in dict.fromkeys(refs)]


def fetched_path(
    name: str,
    uri: str,
    mounts: Mounts,
    *,
    secret: SecretRef | None,
    endpoint: str | None = None,
    region: str | None = None,
    cache_size: str = "50Gi",
) -> str:
    """Local path (or hub id) of model weights at `uri`, adding what the pod needs."""
    scheme, _, rest = uri.partition("://")
    if scheme == "hf":
        return rest
    if scheme == "pvc":
        return pvc_path(uri, mounts)
    mounts.add_volume(
        {"name": "models", "emptyDir": {"sizeLimit": cache_size}},
        {"name": "models", "mountPath": MODELS_DIR, "readOnly": True},
    )
    dest = f"{MODELS_DIR}/{name}"
    env = [{"name": "HOME", "value": "/tmp"}]
    if endpoint:
        env += [
            {"name": "AWS_ENDPOINT_URL", "value": endpoint},
            {"name": "S3_ENDPOINT", "value": endpoint},
        ]
    if region:
        env.append({"name": "AWS_DEFAULT_REGION", "value": region})
    init: dict[str, Any] = {
        "name": dns_label(f"fetch-{name}"),
        "image": defaults.image("storage-initializer"),
        "args": [uri, dest],
        "env": env,
        "resources": defaults.resources("init"),
        "securityContext": defaults.container_security_context(),
        "volumeMounts": [
            {"name": "models", "mountPath": MODELS_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if secret is not None:
        init["envFrom"] = [{"secretRef": {"name": secret.name}}]
    mounts.init_containers.append(init)
    return dest
