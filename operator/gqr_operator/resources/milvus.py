"""Managed standalone Milvus (StatefulSet + Service + config) or nothing for an external one."""

from __future__ import annotations

import re
from typing import Any

from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources import defaults
from gqr_operator.resources.naming import child_name, labels, metadata, selector_labels

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


def cor_collection(cr_name: str, version: str) -> str:
    """Milvus collection of one COR index version ([A-Za-z0-9_], at most 255)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"gqr_{cr_name}_{version}")[:255]


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
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(obj_name, namespace, child_labels),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
                {
                    "name": "metrics",
                    "port": METRICS_PORT,
                    "targetPort": "metrics",
                    "protocol": "TCP",
                },
            ],
        },
    }
    volumes, scratch = defaults.scratch_volumes(cache_size="1Gi")
    container = {
        "name": "milvus",
        "image": milvus.image or defaults.IMAGES["milvus"],
        "command": ["milvus", "run", "standalone"],
        "env": [
            {"name": "ETCD_USE_EMBED", "value": "true"},
            {"name": "ETCD_DATA_DIR", "value": "/var/lib/milvus/etcd"},
            {"name": "ETCD_CONFIG_PATH", "value": "/milvus/configs/embedEtcd.yaml"},
            {"name": "COMMON_STORAGETYPE", "value": "local"},
            {"name": "HOME", "value": "/tmp"},
        ],
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
    volumes.append({"name": "config", "configMap": {"name": obj_name}})
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(obj_name, namespace, child_labels),
        "spec": {
            "serviceName": obj_name,
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": defaults.pod_security_context(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
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
    return [config, service, statefulset]
