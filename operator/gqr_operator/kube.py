"""A small typed REST layer over the kubernetes client: get, list, server-side apply, delete.

The operator manages a handful of kinds (built-in and KServe's InferenceService); raw REST with
server-side apply keeps that uniform, needs no discovery round-trips, and every request is
counted so the benchmark can report API requests per reconcile.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes import client, config

FIELD_MANAGER = "gqr-operator"


@dataclass(frozen=True)
class Kind:
    """Where a kind lives in the REST API."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


KINDS: dict[tuple[str, str], Kind] = {
    (k.api_version, k.kind): k
    for k in (
        Kind("v1", "ConfigMap", "configmaps"),
        Kind("v1", "Service", "services"),
        Kind("v1", "Pod", "pods"),
        Kind("v1", "Event", "events"),
        Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        Kind("v1", "Secret", "secrets"),
        Kind("apps/v1", "Deployment", "deployments"),
        Kind("apps/v1", "StatefulSet", "statefulsets"),
        Kind("batch/v1", "Job", "jobs"),
        Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        Kind("serving.kserve.io/v1beta1", "InferenceService", "inferenceservices"),
        Kind("jobset.x-k8s.io/v1alpha2", "JobSet", "jobsets"),
        Kind("gqr.dev/v1alpha1", "GQRDeployment", "gqrdeployments"),
    )
}


def kind_of(manifest: dict[str, Any]) -> Kind:
    key = (str(manifest.get("apiVersion")), str(manifest.get("kind")))
    if key not in KINDS:
        raise ValueError(f"unsupported kind {key[1]!r} ({key[0]}); known: {sorted(KINDS)}")
    return KINDS[key]


class ApiError(Exception):
    """A non-2xx answer from the apiserver, with its status code and message."""

    def __init__(self, status: int, reason: str, body: str) -> None:
        self.status = status
        self.reason = reason
        self.body = body
        try:
            message = json.loads(body).get("message", body)
        except ValueError:
            message = body
        super().__init__(f"{status} {reason}: {message}")


REQUEST_TIMEOUT_S = float(os.environ.get("GQR_KUBE_TIMEOUT_SECONDS", "30"))
"""Connect and read timeout of every Kubernetes call the operator makes itself."""


class Kube:
    """Thread-safe: kopf runs sync handlers in a thread pool."""

    def __init__(self, api_client: client.ApiClient, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.api = api_client
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._local = threading.local()
        self.requests = 0

    @property
    def thread_requests(self) -> int:
        """Requests sent by the calling thread (reconciles run concurrently in a pool)."""
        return int(getattr(self._local, "requests", 0))

    @classmethod
    def from_environment(cls) -> Kube:
        """In-cluster service account, else $KUBECONFIG / ~/.kube/config."""
        cfg = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            # $KUBECONFIG is read now: the client library reads it once, at import time.
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=os.environ.get("KUBECONFIG"), client_configuration=cfg
            )
        return cls(client.ApiClient(cfg))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        if query:
            path = f"{path}?{urlencode(query)}"
        headers = {"Accept": "application/json", "Content-Type": content_type}
        _, url, headers, body, _ = self.api.param_serialize(
            method=method,
            resource_path=path,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        with self._lock:
            self.requests += 1
        self._local.requests = self.thread_requests + 1
        try:  # (connect, read): a hung apiserver costs one tick, never a stuck worker
            resp = self.api.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                _request_timeout=(self.timeout_s, self.timeout_s),
            )
        except urllib3.exceptions.HTTPError as exc:
            raise ApiError(0, "Unreachable", f"{method} {path}: {type(exc).__name__}") from exc
        data = resp.read()  # type: ignore[no-untyped-call]
        text = data.decode() if isinstance(data, bytes) else str(data or "")
        if not 200 <= resp.status < 300:
            raise ApiError(resp.status, str(resp.reason), text)
        return json.loads(text) if text else None

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = self.request("GET", kind.path(namespace, name))
            return obj
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: Kind, namespace: str | None, selector: str = "") -> list[dict[str, Any]]:
        query = {"labelSelector": selector} if selector else None
        out = self.request("GET", kind.path(namespace), query=query)
        items: list[dict[str, Any]] = out.get("items", [])
        return items

    def apply(self, manifest: dict[str, Any], force: bool = True) -> dict[str, Any]:
        """Server-side apply: an unchanged manifest causes no write in etcd."""
        kind = kind_of(manifest)
        meta = manifest["metadata"]
        obj: dict[str, Any] = self.request(
            "PATCH",
            kind.path(meta.get("namespace"), meta["name"]),
            body=manifest,
            query={"fieldManager": FIELD_MANAGER, "force": "true" if force else "false"},
            content_type="application/apply-patch+yaml",
        )
        return obj

    def create(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """Creates; returns None when it already exists (deterministic names make this safe)."""
        kind = kind_of(manifest)
        try:
            obj: dict[str, Any] = self.request(
                "POST", kind.path(manifest["metadata"].get("namespace")), body=manifest
            )
            return obj
        except ApiError as exc:
            if exc.status == 409:
                return None
            raise

    def delete(self, kind: Kind, namespace: str | None, name: str) -> bool:
        """Deletes with background propagation; False when it was already gone."""
        try:
            self.request(
                "DELETE",
                kind.path(namespace, name),
                body={"propagationPolicy": "Background"},
            )
            return True
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
