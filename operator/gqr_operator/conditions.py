"""Status conditions: build and merge them the way `kubectl describe` users expect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str, status: Status, reason: str, message: str = "", generation: int | None = None
) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now_iso(),
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def merge(existing: list[dict[str, Any]] | None, new: dict[str, Any]) -> list[dict[str, Any]]:
    """Replaces the condition of the same type; keeps lastTransitionTime when status is unchanged
    (a condition that did not transition must not look like it just did)."""
    out: list[dict[str, Any]] = []
    replaced = False
    for cond in existing or []:
        if cond.get("type") == new["type"]:
            if cond.get("status") == new["status"] and cond.get("lastTransitionTime"):
                new = {**new, "lastTransitionTime": cond["lastTransitionTime"]}
            out.append(new)
            replaced = True
        else:
            out.append(dict(cond))
    if not replaced:
        out.append(new)
    return out
