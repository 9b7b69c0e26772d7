"""Managed standalone Milvus (StatefulSet + Service + config) or nothing for an external one."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources import defaults
from gqr_operator.resources.naming import child_name, labels, metadata, selector_labels

COR_PREFIX_MAX = 64
_PREFIX_HASH = 8
_VERSION_CODES = {"_": "_0", ".": "_1", "-": "_2"}
GRPC_PORT = 19530
METRICS_PORT = 9091
_MAX_NAME = 52  # StatefulSet pods get a controller-revision-hash label of name + 11 chars
EMBED_ETCD = """listen-client-urls: http://0.0.0.0:2379
advertise-client-urls: http://0.0.0.0:2379
quota-backend-bytes: 4294967296
auto-compaction-mode: revision
auto-compaction-retention: '1000'
"""


def milvus_name(cr_name: str) -> str:
    """Name of the managed StatefulSet, its Service and ConfigMap."""
    return child_name(cr_name, "milvus", max_len=_MAX_NAME)


def milvus_uri(name: str, namespace: str, spec: GQRDeploymentSpec) -> str:
    """URI the gateway and cor-build use: the external one, or the managed Service."""
    milvus = spec.cooccurrence.milvus
    if milvus.mode == "external" and milvus.uri:
        return milvus.uri
    return f"http://{milvus_name(name)}.{namespace}.svc.cluster.local:{GRPC_PORT}"


def cor_prefix(cr_name: str, namespace: str) -> str:
    """The Milvus collection/alias prefix of one GQRDeployment's COR index, given to cor-build
    (`--collection-prefix`) and the gateway (`--milvus-prefix`), so deployments sharing one
    Milvus never switch or prune each other's collections: `gqr_<namespace>_<name>_<hash>`.

    Milvus names hold letters, digits and '_' and start with a letter or '_'; the index keeps
    '__' for its version separator. Namespace and name lose their '-' and '.', so a hash of
    both keeps `a-b`/`c` and `a`/`b-c` apart. At most COR_PREFIX_MAX characters, so that with
    '__' and any escaped version (a DNS label, at most 126 once escaped) a collection name stays
    within Milvus's 255."""
    digest = hashlib.sha256(f"{namespace}/{cr_name}".encode()).hexdigest()[:_PREFIX_HASH]
    readable = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]", "_", f"{namespace}_{cr_name}"))
    readable = readable.strip("_")[: COR_PREFIX_MAX - len("gqr__") - _PREFIX_HASH].rstrip("_")
    return f"gqr_{readable}_{digest}" if readable else f"gqr_{digest}"


def cor_collection(prefix: str, version: str) -> str:
    """The Milvus collection of one COR version: `<prefix>__<version>` with '_', '.', '-' in the
    version escaped as '_0', '_1', '_2' (as gqr_serving.cor.index names it; a test holds the
    two to the same answer)."""
    return f"{prefix}__" + re.sub(r"[_.-]", lambda m: _VERSION_CODES[m.group()], version)


def _milvus_container(spec: GQRDeploymentSpec, scratch: list[dict[str, Any]]) -> dict[str, Any]:
    milvus = spec.cooccurrence.milvus
    env = {
        "ETCD_USE_EMBED": "true",
        "ETCD_DATA_DIR": "/var/lib/milvus/etcd",
        "ETCD_CONFIG_PATH": "/milvus/configs/embedEtcd.yaml",
        "COMMON_STORAGETYPE": "local",
        "HOME": "/tmp",
    }
    return {
        "name": "milvus",
        "image": defaults.image("milvus", milvus.image),
        "command": ["milvus", "run", "standalone"],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "ports": [
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "resources": defaults.resources("milvus", milvus.resources),
        # Milvus writes below /milvus at start-up, so its root filesystem stays writable.
        "securityContext": defaults.container_security_context(read_only_root=False),
        "volumeMounts": [
            *scratch,
            {"name": "data", "mountPath": "/var/lib/milvus"},
            {
                "name": "config",
                "mountPath": "/milvus/configs/embedEtcd.yaml",
                "subPath": "embedEtcd.yaml",
                "readOnly": True,
            },
        ],
        "startupProbe": defaults.http_probe("/healthz", "metrics", period=10, failures=60),
        "readinessProbe": defaults.http_probe("/healthz", "metrics", period=10, failures=3),
        "livenessProbe": defaults.http_probe("/healthz", "metrics", period=30, failures=3),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def build_milvus(name: str, namespace: str, spec: GQRDeploymentSpec) -> list[dict[str, Any]]:
    """ConfigMap, Service and StatefulSet of a managed Milvus; [] when it is external."""
    milvus = spec.cooccurrence.milvus
    if milvus.mode == "external":
        return []
    obj_name = milvus_name(name)
    child_labels = labels(name, "milvus")
    selector = selector_labels(name, "milvus")
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(obj_name, namespace, child_labels),
        "data": {"embedEtcd.yaml": EMBED_ETCD},
    }
    volumes, scratch = defaults.scratch_volumes(cache_size="1Gi")
    volumes.append({"name": "config", "configMap": {"name": obj_name}})
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(obj_name, namespace, child_labels),
        "spec": {
            "serviceName": obj_name,
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": defaults.pod_template(
                defaults.pod_spec(
                    [_milvus_container(spec, scratch)],
                    volumes,
                    placement=milvus,
                    selector=selector,
                ),
                milvus,
                selector,
            ),
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data", "labels": child_labels},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": milvus.storage_size}},
                    },
                }
            ],
        },
    }
    service = defaults.cluster_ip_service(
        metadata(obj_name, namespace, child_labels),
        selector,
        {"grpc": GRPC_PORT, "metrics": METRICS_PORT},
    )
    return [config, service, statefulset]
