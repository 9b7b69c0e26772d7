"""How a pod reaches a URI: hub ids pass through, pvc:// becomes a read-only mount, s3:// and
gs:// are fetched into an emptyDir by an init container whose credentials come only from a
Secret reference (envFrom)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gqr_operator.models.common import SecretRef
from gqr_operator.resources import defaults
from gqr_operator.resources.naming import dns_label

MODELS_DIR = "/mnt/models"
PVC_DIR = "/mnt/pvc"


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
    claim, _, path = uri.removeprefix("pvc://").partition("/")
    vol = dns_label(f"pvc-{claim}")
    mounts.add_volume(
        {"name": vol, "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}},
        {"name": vol, "mountPath": f"{PVC_DIR}/{claim}", "readOnly": read_only},
    )
    return f"{PVC_DIR}/{claim}/{path}".rstrip("/")


def uri_for_path(path: str) -> str:
    """The inverse of `pvc_path` for what a Job reports: a path under a mounted claim becomes
    its pvc://<claim>/<path> URI, so other pods (LLM servers, the predictor) can mount it;
    anything else (s3://, hf://, ...) passes through."""
    prefix = PVC_DIR + "/"
    if path.startswith(prefix) and "://" not in path:
        claim, _, rest = path[len(prefix) :].partition("/")
        if claim:
            return f"pvc://{claim}/{rest}".rstrip("/")
    return path


def storage_uri(uri: str, mounts: Mounts, *, read_only: bool = False) -> str:
    """For code that reads URIs itself (gqr images): pvc:// becomes a mounted local path,
    everything else passes through."""
    return pvc_path(uri, mounts, read_only=read_only) if uri.startswith("pvc://") else uri


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
        "image": defaults.IMAGES["storage-initializer"],
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
