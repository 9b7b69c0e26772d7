"""One reconcile pass of a GQRDeployment: parse the spec, sync the children, derive status.

Never raises for a bad spec or a failing child: what the schema cannot catch, and what the
cluster refuses, ends up in a condition (the operator degrades, it does not crash).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from gqr_contracts.base import describe
from gqr_operator import children, conditions, progress
from gqr_operator.actions import SetCondition
from gqr_operator.allowlist import Allowlist
from gqr_operator.kube import ApiError, Kube
from gqr_operator.models.spec import GQRDeploymentSpec, parse_spec
from gqr_operator.observe import is_available
from gqr_operator.resources.gateway import build_signing_key_secret, gateway_name
from gqr_operator.resources.llm import llm_name
from gqr_operator.rollout.status import ACTIVE


@dataclass
class Outcome:
    """The status patch of one pass, and the Events worth emitting."""

    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    spec: GQRDeploymentSpec | None = None
    sync: children.SyncResult | None = None


def _not_reconciled(reason: str, message: str, conds: Any, generation: int) -> Outcome:
    """The pass of a spec that is not acted on: one the models refuse (InvalidSpec) or one
    naming what the operator's allowlist refuses (NotAllowed). Nothing is written for it."""
    out = Outcome()
    out.status = {
        "phase": "Invalid",
        "observedGeneration": generation,
        "conditions": conditions.merge(
            conds, conditions.condition("Ready", "False", reason, message, generation)
        ),
    }
    out.events.append(("Warning", reason, message))
    return out


def _find(conds: list[dict[str, Any]] | None, type_: str) -> dict[str, Any]:
    return next((c for c in conds or [] if c.get("type") == type_), {})


def _phase(serving: str, moved: dict[str, Any]) -> str:
    """The printer column: a rollout or training run in progress shows over plain serving."""
    rollout = (moved.get("rollout") or {}).get("phase")
    if serving == "Ready" and rollout in ACTIVE:
        return "Canary" if rollout != "Paused" else "Paused"
    if serving == "Ready" and (moved.get("pipeline") or {}).get("phase") == "Running":
        return "Training"
    return serving


def _advance(kube: Kube, body: dict[str, Any], spec: GQRDeploymentSpec) -> progress.Progress:
    """The pipeline and rollout tick; a refused API call degrades instead of failing the pass."""
    try:
        return progress.advance(kube, body, spec, datetime.now(UTC))
    except ApiError as exc:
        return progress.Progress(
            conditions=[SetCondition("Degraded", "True", "ProgressFailed", str(exc)[:1000])]
        )


def _ready(
    result: children.SyncResult, name: str, stable: str, generation: int
) -> tuple[dict[str, Any], str]:
    """Ready = the stable LLM server and the gateway are Available: the service answers."""
    live = {
        "llm": result.live.get(f"Deployment/{llm_name(name, stable)}"),
        "gateway": result.live.get(f"Deployment/{gateway_name(name)}"),
    }
    waiting = [k for k, obj in live.items() if not is_available(obj)]
    if waiting:
        message = "waiting for " + ", ".join(waiting) + " to become Available"
        return conditions.condition("Ready", "False", "Progressing", message, generation), (
            "Progressing"
        )
    message = f"serving {stable}"
    return conditions.condition("Ready", "True", "Available", message, generation), "Ready"


def _degraded(
    result: children.SyncResult,
    moved: progress.Progress,
    conds: Any,
    generation: int,
    out: Outcome,
) -> dict[str, Any]:
    """A child that cannot be written (e.g. KServe not installed) degrades the service without
    making it unready; else the rollout's view of Degraded, kept between its changes."""
    if result.errors:
        first = next(iter(result.errors.items()))
        reason, message = "ChildrenFailed", f"{len(result.errors)} child(ren) failed: {first[0]}: "
        message += first[1][:500]
        degraded = conditions.condition("Degraded", "True", reason, message, generation)
        if degraded["message"] != _find(conds, "Degraded").get("message"):
            out.events.append(("Warning", reason, message))
        return degraded
    for c in moved.conditions:
        if c.type == "Degraded":
            return conditions.condition(c.type, c.status, c.reason, c.message, generation)
    # The rollout sets Degraded only when its view changes: between its changes keep what it
    # said (e.g. CanaryRolledBack), or the condition would flip on every other tick.
    prev = _find(conds, "Degraded")
    if prev.get("reason") not in (None, "ChildrenFailed"):
        return conditions.condition(
            "Degraded", prev["status"], prev["reason"], prev.get("message", ""), generation
        )
    return conditions.condition("Degraded", "False", "AllChildrenApplied", "", generation)


def reconcile(kube: Kube, body: dict[str, Any]) -> Outcome:
    meta, status = body["metadata"], dict(body.get("status") or {})
    name, namespace = meta["name"], meta["namespace"]
    generation = int(meta.get("generation", 0))
    conds = status.get("conditions")
    try:
        spec = parse_spec(body.get("spec") or {})
    except ValidationError as exc:
        return _not_reconciled("InvalidSpec", describe(exc, "spec", limit=5), conds, generation)
    if violations := Allowlist.from_env().violations(spec):
        return _not_reconciled("NotAllowed", "; ".join(violations)[:1000], conds, generation)
    out = Outcome(spec=spec)
    # Pipeline and rollout first: their new status decides which children should exist.
    moved = _advance(kube, body, spec)
    status.update(moved.status)
    out.events.extend((e.type, e.reason, e.message) for e in moved.events)
    for c in moved.conditions:
        conds = conditions.merge(
            conds, conditions.condition(c.type, c.status, c.reason, c.message, generation)
        )
    versions = children.versions_from_status(spec, status)
    result = children.sync(kube, body, children.desired(name, namespace, spec, versions))
    if spec.gateway.signing_key_secret_ref is None:
        key = build_signing_key_secret(name, namespace)
        children.create_once(kube, body, [key], result)
    out.sync = result
    ready, phase = _ready(result, name, versions.stable.version, generation)
    degraded = _degraded(result, moved, conds, generation, out)
    if result.errors and phase == "Ready":
        phase = "Degraded"
    if result.changed:
        counts = (len(result.created), len(result.updated), len(result.pruned))
        message = "created {}, updated {}, pruned {}".format(*counts)
        out.events.append(("Normal", "ChildrenSynced", message))
    out.status = {
        **moved.status,
        "observedGeneration": generation,
        "conditions": conditions.merge(conditions.merge(conds, ready), degraded),
        "phase": _phase(phase, moved.status),
    }
    return out
