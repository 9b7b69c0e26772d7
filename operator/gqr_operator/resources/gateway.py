"""Gateway Deployment, Service, PodDisruptionBudget and signing key (the recommendation API)."""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources import defaults
from gqr_operator.resources.ctr import ctr_base_url
from gqr_operator.resources.milvus import cor_prefix, milvus_uri
from gqr_operator.resources.naming import child_name, labels, metadata, selector_labels
from gqr_operator.resources.output_filter import output_filter_args
from gqr_operator.resources.routing import ROUTING_FILE, routing_name
from gqr_operator.resources.storage import Mounts, storage_uri, store_env, store_secrets

PORT = 8080
INTERNAL_PORT = 9090  # /v1/stats, /metrics, /admin: opened to the operator and monitoring only
SECRET_DIR = "/var/run/secrets/gqr"
SIGNING_DIR = "/var/run/secrets/gqr-signing"
SIGNING_KEY = "key"
ROTATION_KEYS = ("previous", "next")  # verify-only keys of the signing Secret
CONFIG_DIR = "/etc/gqr"
SPOOL_MOUNT = "/var/lib/gqr"  # the spool volume: <mount>/spool and <mount>/staging
STAGING_ENV = "GQR_LOG_STAGING_DIR"  # gqr_serving.logstore.staging (not imported: no serving)


def gateway_name(cr_name: str) -> str:
    """Name of the gateway Deployment, Service and PodDisruptionBudget."""
    return child_name(cr_name, "gateway")


def signing_key_name(cr_name: str) -> str:
    """Name of the Secret holding the gateway's signing key, when the operator makes it."""
    return child_name(cr_name, "gateway-key")


def build_signing_key_secret(name: str, namespace: str) -> dict[str, Any]:
    """The gateway's signing key: 32 random bytes as text. Created once and never rewritten
    (children.create_once), so every replica, and every restart, signs with the same key."""
    key = secrets.token_urlsafe(32).encode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(signing_key_name(name), namespace, labels(name, "gateway")),
        "data": {SIGNING_KEY: base64.b64encode(key).decode()},
    }


def _signing_key(name: str, spec: GQRDeploymentSpec, mounts: Mounts) -> str:
    """Mount the signing key (the CR's own Secret, or the one the operator made); its path."""
    ref = spec.gateway.signing_key_secret_ref
    secret, key = (ref.name, ref.key) if ref else (signing_key_name(name), SIGNING_KEY)
    # The whole Secret, not items: keys added later (previous, next: a rotation) appear in the
    # running pods, which re-read them (--key-reload-s).
    mounts.add_volume(
        {"name": "signing-key", "secret": {"secretName": secret}},
        {"name": "signing-key", "mountPath": SIGNING_DIR, "readOnly": True},
    )
    return f"{SIGNING_DIR}/{key}"


def _env(spec: GQRDeploymentSpec, name: str) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "GQR_DEPLOYMENT", "value": name},
        {"name": "GQR_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "GQR_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        *defaults.scratch_env(),
        *store_env(spec),
    ]
    ref = spec.cooccurrence.milvus.secret_ref
    if ref is not None:
        env.append(
            {
                "name": "MILVUS_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
    return env


def _args(
    name: str, namespace: str, spec: GQRDeploymentSpec, roots: tuple[str, str], key_file: str
) -> list[str]:
    """gqr-gateway flags (gqr_serving.gateway.settings)."""
    log_root, cor_root = roots
    args = [
        "--routing-file", f"{CONFIG_DIR}/{ROUTING_FILE}",
        "--secret-key-file", key_file,
        "--verify-key-files", ":".join(f"{SIGNING_DIR}/{k}" for k in ROTATION_KEYS),
        "--impression-ttl-s", str(spec.gateway.impression_ttl_seconds),
        "--impression-durability", spec.gateway.impression_durability,
        "--log-retention-days", str(spec.logs.retention_days),
        "--expose-arm", "true" if spec.gateway.expose_arm else "false",
        "--log-root", log_root,
        "--deployment", name,
        "--cor-root", cor_root,
        "--milvus-uri", milvus_uri(name, namespace, spec),
        "--milvus-prefix", cor_prefix(name, namespace),
        "--cor-k", str(spec.cooccurrence.neighbours),
        "--ctr-url", ctr_base_url(name, namespace),
        "--rerank", "true" if spec.gateway.rerank else "false",
        "--host", "0.0.0.0",
        "--port", str(PORT),
        "--internal-port", str(INTERNAL_PORT),
    ]  # fmt: skip
    if spec.cooccurrence.milvus.secret_ref is not None:
        args += ["--milvus-token-file", f"{SECRET_DIR}/milvus-token"]
    return args


def _spool(name: str, spec: GQRDeploymentSpec, mounts: Mounts) -> tuple[list[str], list[Any]]:
    """With spec.gateway.spool: a generic ephemeral volume per pod for the impression spool
    and the log staging folder; the gateway flags and env that point at it."""
    spool = spec.gateway.spool
    if spool is None:
        return [], []
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": str(spool.size)}},
    }
    if spool.storage_class_name:
        claim["storageClassName"] = spool.storage_class_name
    template = {"metadata": {"labels": labels(name, "gateway")}, "spec": claim}
    mounts.add_volume(
        {"name": "spool", "ephemeral": {"volumeClaimTemplate": template}},
        {"name": "spool", "mountPath": SPOOL_MOUNT},
    )
    args = ["--spool-dir", f"{SPOOL_MOUNT}/spool"]
    if (cap := _half_bytes(str(spool.size))) is not None:
        args += ["--spool-max-bytes", str(cap)]
    return args, [{"name": STAGING_ENV, "value": f"{SPOOL_MOUNT}/staging"}]


_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_UNITS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def _half_bytes(quantity: str) -> int | None:
    """Half of a storage quantity in bytes (None for a form not worth parsing, e.g. 1e9)."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([KMGTPE]i|[kMGTPE])?", quantity)
    if m is None:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2) or ""]) // 2


def build_gateway_deployment(name: str, namespace: str, spec: GQRDeploymentSpec) -> dict[str, Any]:
    """The gateway pods; routing.json comes from the routing ConfigMap."""
    volumes, scratch = defaults.scratch_volumes(cache_size="2Gi")
    volumes.append({"name": "routing", "configMap": {"name": routing_name(name)}})
    mounts = Mounts(
        volumes=volumes,
        mounts=[*scratch, {"name": "routing", "mountPath": CONFIG_DIR, "readOnly": True}],
    )
    log_root = storage_uri(spec.logs.uri, mounts)  # mounts a pvc:// log store read-write
    # The artifact root: the gateway reads <root>/cor/CURRENT and its versions.
    cor_root = storage_uri(spec.artifacts.uri, mounts, read_only=True)
    ref = spec.cooccurrence.milvus.secret_ref
    if ref is not None:  # the token reaches the gateway as a file, never as a literal
        items = [{"key": ref.key, "path": "milvus-token"}]
        volumes.append({"name": "milvus-token", "secret": {"secretName": ref.name, "items": items}})
        mounts.mounts.append({"name": "milvus-token", "mountPath": SECRET_DIR, "readOnly": True})
    key_file = _signing_key(name, spec, mounts)
    args = _args(name, namespace, spec, (log_root, cor_root), key_file)
    args += output_filter_args(spec, mounts)  # mounts a blocklist ConfigMap read-only
    spool_args, spool_env = _spool(name, spec, mounts)
    args += spool_args
    container: dict[str, Any] = {
        "name": "gateway",
        "image": defaults.image("gateway", spec.gateway.image),
        "command": ["gqr-gateway"],
        "args": args,
        "ports": [
            {"name": "http", "containerPort": PORT, "protocol": "TCP"},
            {"name": "internal", "containerPort": INTERNAL_PORT, "protocol": "TCP"},
        ],
        "env": _env(spec, name) + spool_env,
        "resources": defaults.resources("gateway", spec.gateway.resources),
        "securityContext": defaults.container_security_context(),
        "volumeMounts": mounts.mounts,
        "readinessProbe": defaults.http_probe("/readyz", "http", period=5, failures=3),
        "livenessProbe": defaults.http_probe("/healthz", "http", period=20, failures=3),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if secrets := store_secrets(spec):  # logs (written) and artifacts (COR versions read)
        container["envFrom"] = secrets
    selector = selector_labels(name, "gateway")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(gateway_name(name), namespace, labels(name, "gateway")),
        "spec": {
            "replicas": spec.gateway.replicas,
            "selector": {"matchLabels": selector},
            # The grace period lets in-flight requests finish and their impressions reach the
            # log.
            "template": defaults.pod_template(
                defaults.pod_spec(
                    [container],
                    mounts.volumes,
                    grace_s=30,
                    placement=spec.gateway,
                    selector=selector,
                ),
                spec.gateway,
                selector,
            ),
        },
    }


def build_gateway_service(name: str, namespace: str) -> dict[str, Any]:
    """ClusterIP Service of the recommendation API (port 80) and of the internal port (9090:
    /v1/stats for the operator, /metrics for Prometheus)."""
    return defaults.cluster_ip_service(
        metadata(gateway_name(name), namespace, labels(name, "gateway")),
        selector_labels(name, "gateway"),
        {"http": 80, "internal": INTERNAL_PORT},
    )


def build_gateway_pdb(name: str, namespace: str) -> dict[str, Any]:
    """Keeps all gateway pods but one up during voluntary disruptions."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(gateway_name(name), namespace, labels(name, "gateway")),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(name, "gateway")},
        },
    }
