"""Desired children of a GQRDeployment, and syncing them: create, repair drift, prune.

Children are compared with what is live before anything is written: a child whose live object
already contains every field we set is left alone, so an unchanged spec causes no writes (no
reconcile storms); a child edited or deleted by hand is re-applied (server-side apply, forced).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gqr_operator.kube import KINDS, ApiError, Kind, Kube
from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources import ctr, gateway, llm, milvus, netpol, routing
from gqr_operator.resources.llm import ModelVersion
from gqr_operator.resources.naming import DEPLOYMENT_LABEL, MANAGED_BY, Arm, label_value
from gqr_operator.rollout.status import desired_routing, desired_servers

# Kinds the operator prunes when they are no longer desired (Jobs are the pipeline's business).
PRUNED = [
    KINDS[("apps/v1", "Deployment")],
    KINDS[("v1", "Service")],
    KINDS[("v1", "ConfigMap")],
    KINDS[("policy/v1", "PodDisruptionBudget")],
    KINDS[("networking.k8s.io/v1", "NetworkPolicy")],
    KINDS[("apps/v1", "StatefulSet")],
    KINDS[("serving.kserve.io/v1beta1", "InferenceService")],
]


INITIAL_VERSION = llm.INITIAL_VERSION


@dataclass(frozen=True)
class Versions:
    """Which LLM servers run, how the gateway routes between them, and the CTR/COR versions
    (all derived from `.status`)."""

    stable: ModelVersion
    canary: ModelVersion | None = None
    canary_weight: int = 0
    servers: tuple[tuple[ModelVersion, Arm], ...] = ()
    ctr_uri: str | None = None
    ctr_version: str = INITIAL_VERSION


def model_version(spec: GQRDeploymentSpec, version: str, artifact_uri: str) -> ModelVersion:
    """A trained version is full weights: dpo-iterate merges its LoRA adapters after every
    round (so each round's reference is the last policy), and reports the merged model."""
    if version == INITIAL_VERSION or not artifact_uri:
        return ModelVersion(version, spec.llm.model)
    return ModelVersion(version, artifact_uri)


def versions_from_status(spec: GQRDeploymentSpec, status: dict[str, Any]) -> Versions:
    """Servers and routing implied by `status.rollout`: the candidate keeps its server for as
    long as the rollout is active (drain included); before any rollout, the spec's model."""
    ro = status.get("rollout") or {}

    implied = [model_version(spec, r.version, r.artifact_uri) for r in desired_servers(ro)]
    servers = implied or [ModelVersion(INITIAL_VERSION, spec.llm.model)]
    stable = servers[0]
    by_version = {m.version: m for m in servers}
    routing = desired_routing(ro)
    if routing is None:
        route_stable, route_canary, weight = stable, None, 0
    else:
        route_stable = by_version.get(routing.stable_version, stable)
        route_canary = by_version.get(routing.canary_version or "")
        weight = routing.canary_weight if route_canary else 0
    arms: tuple[Arm, ...] = ("stable", "canary")
    ctr_entry = status.get("ctr") or {}
    return Versions(
        stable=route_stable,
        canary=route_canary,
        canary_weight=weight,
        servers=tuple(zip(servers, arms, strict=False)),
        ctr_uri=ctr_entry.get("storageUri") or spec.ctr_predictor.storage_uri,
        ctr_version=str(ctr_entry.get("version") or INITIAL_VERSION),
    )


def desired(
    name: str, namespace: str, spec: GQRDeploymentSpec, v: Versions
) -> list[dict[str, Any]]:
    """Every child manifest this GQRDeployment should have right now."""
    out: list[dict[str, Any]] = []
    for mv, arm in v.servers or ((v.stable, "stable"),):
        out.append(llm.build_llm_deployment(name, namespace, spec, mv, arm))
        out.append(llm.build_llm_service(name, namespace, mv, arm))
    if v.ctr_uri:
        out.append(
            ctr.build_inference_service(
                name, namespace, spec, storage_uri=v.ctr_uri, version=v.ctr_version
            )
        )
    out.extend(milvus.build_milvus(name, namespace, spec))
    doc = routing.routing_config(
        name, namespace, spec, stable=v.stable, canary=v.canary, canary_weight=v.canary_weight
    )
    out.append(routing.build_routing_configmap(name, namespace, doc))
    out.append(gateway.build_gateway_deployment(name, namespace, spec))
    out.append(gateway.build_gateway_service(name, namespace))
    out.append(gateway.build_gateway_pdb(name, namespace))
    out.extend(netpol.build_network_policies(name, namespace, spec))
    return out


def _empty(value: Any) -> bool:
    # The apiserver drops empty lists/maps and false/zero-valued omitempty fields.
    return value is None or value is False or value == [] or value == {}


def contains(want: Any, have: Any) -> bool:
    """True when every field of `want` is present with the same value in `have` (server
    defaults may add fields; lists must match item by item; empty values may be omitted)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return False
        return all(contains(val, have[k]) if k in have else _empty(val) for k, val in want.items())
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(contains(w, h) for w, h in zip(want, have, strict=True))
        )
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    if isinstance(want, int | float) and isinstance(have, int | float):
        return float(want) == float(have)
    return bool(want == have) or str(want) == str(have)


def _body(manifest: dict[str, Any]) -> dict[str, Any]:
    # LIST items carry no apiVersion/kind; everything else is compared.
    return {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


@dataclass
class SyncResult:
    """What one sync did; `errors` holds children that could not be written, by reason."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    live: dict[str, dict[str, Any]] = field(default_factory=dict)  # "Kind/name" -> object

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.pruned)


def _key(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def sync(kube: Kube, owner: dict[str, Any], children: list[dict[str, Any]]) -> SyncResult:
    """Applies missing or drifted children and prunes the ones no longer desired."""
    namespace = owner["metadata"]["namespace"]
    selector = (
        f"{DEPLOYMENT_LABEL}={label_value(owner['metadata']['name'])},"
        f"app.kubernetes.io/managed-by={MANAGED_BY}"
    )
    result = SyncResult()
    live: dict[str, tuple[Kind, dict[str, Any]]] = {}
    for kind in PRUNED:
        try:
            for obj in kube.list(kind, namespace, selector):
                live[f"{kind.kind}/{obj['metadata']['name']}"] = (kind, obj)
                result.live[f"{kind.kind}/{obj['metadata']['name']}"] = obj
        except ApiError as exc:
            if exc.status != 404:  # 404: the kind is not installed (e.g. no KServe)
                raise
    ref = owner_reference(owner)
    wanted = set()
    for child in children:
        child = {**child, "metadata": {**child["metadata"], "ownerReferences": [ref]}}
        key = _key(child)
        wanted.add(key)
        current = live.get(key, (None, None))[1]
        if current is not None and contains(_body(child), current):
            result.unchanged.append(key)
            continue
        try:
            result.live[key] = kube.apply(child)
        except ApiError as exc:
            result.errors[key] = str(exc)
            continue
        (result.updated if current is not None else result.created).append(key)
    for key, (kind, obj) in live.items():
        if key not in wanted and _owned_by(obj, owner):
            kube.delete(kind, namespace, obj["metadata"]["name"])
            result.pruned.append(key)
    return result


def create_once(
    kube: Kube, owner: dict[str, Any], children: list[dict[str, Any]], result: SyncResult
) -> None:
    """Children made once and never read back or rewritten (a Secret with a generated key:
    the operator may create Secrets, not read them). An existing one is left as it is; it
    goes with the owner (GC)."""
    ref = owner_reference(owner)
    for child in children:
        key = _key(child)
        try:
            made = kube.create(
                {**child, "metadata": {**child["metadata"], "ownerReferences": [ref]}}
            )
        except ApiError as exc:
            result.errors[key] = str(exc)
            continue
        (result.created if made is not None else result.unchanged).append(key)


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    uid = owner["metadata"]["uid"]
    return any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])
