"""One reconcile pass of a GQRDeployment: parse the spec, sync the children, derive status.

Never raises for a bad spec or a failing child: what the schema cannot catch, and what the
cluster refuses, ends up in a condition (the operator degrades, it does not crash).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from gqr_operator import children, conditions, progress
from gqr_operator.actions import SetCondition
from gqr_operator.kube import ApiError, Kube
from gqr_operator.models.spec import GQRDeploymentSpec, parse_spec
from gqr_operator.resources.gateway import gateway_name
from gqr_operator.resources.llm import llm_name
from gqr_operator.rollout.status import ACTIVE


@dataclass
class Outcome:
    """The status patch of one pass, and the Events worth emitting."""

    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    spec: GQRDeploymentSpec | None = None
    sync: children.SyncResult | None = None


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{loc}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)


def _find(conds: list[dict[str, Any]] | None, type_: str) -> dict[str, Any]:
    return next((c for c in conds or [] if c.get("type") == type_), {})


def _available(obj: dict[str, Any] | None) -> bool:
    if not obj:
        return False
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conds)


def _phase(serving: str, moved: dict[str, Any]) -> str:
    """The printer column: a rollout or training run in progress shows over plain serving."""
    rollout = (moved.get("rollout") or {}).get("phase")
    if serving == "Ready" and rollout in ACTIVE:
        return "Canary" if rollout != "Paused" else "Paused"
    if serving == "Ready" and (moved.get("pipeline") or {}).get("phase") == "Running":
        return "Training"
    return serving


def reconcile(kube: Kube, body: dict[str, Any]) -> Outcome:
    meta, status = body["metadata"], dict(body.get("status") or {})
    name, namespace = meta["name"], meta["namespace"]
    generation = int(meta.get("generation", 0))
    out = Outcome()
    conds = status.get("conditions")
    try:
        spec = parse_spec(body.get("spec") or {})
    except ValidationError as exc:
        message = _validation_message(exc)
        out.status = {
            "phase": "Invalid",
            "observedGeneration": generation,
            "conditions": conditions.merge(
                conds, conditions.condition("Ready", "False", "InvalidSpec", message, generation)
            ),
        }
        out.events.append(("Warning", "InvalidSpec", message))
        return out
    out.spec = spec
    # Pipeline and rollout first: their new status decides which children should exist.
    try:
        moved = progress.advance(kube, body, spec, datetime.now(UTC))
    except ApiError as exc:
        moved = progress.Progress(
            conditions=[SetCondition("Degraded", "True", "ProgressFailed", str(exc)[:1000])]
        )
    status.update(moved.status)
    out.events.extend((e.type, e.reason, e.message) for e in moved.events)
    for c in moved.conditions:
        conds = conditions.merge(
            conds, conditions.condition(c.type, c.status, c.reason, c.message, generation)
        )
    versions = children.versions_from_status(spec, status)
    result = children.sync(kube, body, children.desired(name, namespace, spec, versions))
    out.sync = result
    # Ready = the stable LLM server and the gateway are Available: the service answers. A child
    # that cannot be written (e.g. KServe not installed) degrades it without making it unready.
    live = {
        k: result.live.get(f"Deployment/{n}")
        for k, n in (
            ("llm", llm_name(name, versions.stable.version)),
            ("gateway", gateway_name(name)),
        )
    }
    waiting = [k for k, obj in live.items() if not _available(obj)]
    if waiting:
        message = "waiting for " + ", ".join(waiting) + " to become Available"
        ready = conditions.condition("Ready", "False", "Progressing", message, generation)
        phase = "Progressing"
    else:
        message = f"serving {versions.stable.version}"
        ready = conditions.condition("Ready", "True", "Available", message, generation)
        phase = "Ready"
    if result.errors:
        first = next(iter(result.errors.items()))
        reason, message = "ChildrenFailed", f"{len(result.errors)} child(ren) failed: {first[0]}: "
        message += first[1][:500]
        degraded = conditions.condition("Degraded", "True", reason, message, generation)
        if degraded["message"] != _find(conds, "Degraded").get("message"):
            out.events.append(("Warning", reason, message))
        phase = "Degraded" if phase == "Ready" else phase
    else:
        from_rollout: dict[str, Any] | None = next(
            (
                conditions.condition(c.type, c.status, c.reason, c.message, generation)
                for c in moved.conditions
                if c.type == "Degraded"
            ),
            None,
        )
        # The rollout sets Degraded only when its view changes: between its changes keep what it
        # said (e.g. CanaryRolledBack), or the condition would flip on every other tick.
        prev = _find(conds, "Degraded")
        if from_rollout is None and prev.get("reason") not in (None, "ChildrenFailed"):
            from_rollout = conditions.condition(
                "Degraded", prev["status"], prev["reason"], prev.get("message", ""), generation
            )
        degraded = from_rollout or conditions.condition(
            "Degraded", "False", "AllChildrenApplied", "", generation
        )
    if result.changed:
        out.events.append(
            (
                "Normal",
                "ChildrenSynced",
                f"created {len(result.created)}, updated {len(result.updated)}, "
                f"pruned {len(result.pruned)}",
            )
        )
    merged = conditions.merge(conditions.merge(conds, ready), degraded)
    out.status = {
        **moved.status,
        "observedGeneration": generation,
        "conditions": merged,
        "phase": _phase(phase, moved.status),
    }
    return out
