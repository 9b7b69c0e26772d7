"""The actions the pure machines (the update pipeline, the canary rollout) ask the operator's
tick to execute, the decision type they return, and the `Tick` both machines build it with.

Contract with the tick (`gqr_operator.progress`): execute the actions in order, THEN persist the
returned status. Every action is safe to execute twice (creating an existing Job is success,
conditions are set, not appended), so a restart between "act" and "persist" re-derives the same
actions from the old status and nothing is duplicated. Events are the one exception: a crash in
that window may post an Event twice.

What follows from the status alone is not an action: the routing and the LLM servers are level
functions of `status.rollout` (`rollout.status.desired_routing`, `desired_servers`), which the
children sync turns into manifests on every pass.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

ConditionStatus = Literal["True", "False", "Unknown"]
EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Event:
    """Post a Kubernetes Event on the GQRDeployment."""

    reason: str
    """CamelCase reason, e.g. `CanaryStepPassed`."""
    message: str
    """One human line with the numbers behind the decision."""
    type: EventType = "Normal"
    """`Warning` for failures and rollbacks."""


@dataclass(frozen=True)
class SetCondition:
    """Merge this condition into `status.conditions` (see `gqr_operator.conditions.merge`)."""

    type: str
    """Condition type, e.g. `CanaryHealthy`."""
    status: ConditionStatus
    """`True`, `False` or `Unknown`."""
    reason: str
    """CamelCase reason."""
    message: str = ""
    """Human message; carries the measured CTRs where there are some."""


@dataclass(frozen=True)
class CreateJob:
    """Create one pipeline step's Job (`resources.jobs.build_pipeline_job`)."""

    name: str
    """Deterministic `<cr>-<step>-<run-id>`; a second create hits AlreadyExists."""
    step: str
    """`cor-build`, `ctr-train` or `dpo-iterate`."""
    run_id: str
    """The pipeline run this Job belongs to."""
    inputs: Mapping[str, str] = field(default_factory=dict)
    """Artifacts of earlier steps (dpo-iterate: base_model, ctr_uri, cor_uri)."""


@dataclass(frozen=True)
class StartRollout:
    """Hand a candidate that passed the offline gate to the rollout machine (`start`)."""

    version: str
    """Candidate model version."""
    artifact_uri: str
    """Where its weights or adapter live."""
    run_id: str
    """The pipeline run that produced it."""


Action = Event | SetCondition | CreateJob | StartRollout


@dataclass(frozen=True)
class Decision:
    """What one tick decided: the new status sub-dict and the actions to execute first."""

    status: dict[str, Any]
    """The new sub-dict (`status.rollout` or `status.pipeline`); JSON-serialisable."""
    actions: list[Action] = field(default_factory=list)
    """Side effects in execution order."""


def iso(t: datetime) -> str:
    """A UTC timestamp as Kubernetes writes them."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    """The inverse of `iso`; None for a missing or unreadable value (status may be hand-edited)."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def changed_conditions(
    existing: Iterable[Mapping[str, Any]] | None, desired: Iterable[SetCondition]
) -> list[SetCondition]:
    """Only the desired conditions that differ from what status already shows, so a repeated
    tick asks for nothing."""
    current = {c.get("type"): c for c in existing or []}
    out = []
    for cond in desired:
        have = current.get(cond.type)
        if have is None or (have.get("status"), have.get("reason"), have.get("message", "")) != (
            cond.status,
            cond.reason,
            cond.message,
        ):
            out.append(cond)
    return out


def working_copy(status: Mapping[str, Any] | None) -> dict[str, Any]:
    """A deep copy of a machine's status sub-dict for a tick to rewrite; none yet is Idle."""
    return copy.deepcopy(dict(status or {})) or {"phase": "Idle"}


@dataclass
class Tick:
    """One tick of a machine in progress; each machine subclasses it with its inputs."""

    st: dict[str, Any]
    """The status sub-dict being rewritten (a `working_copy`)."""
    actions: list[Action] = field(default_factory=list, kw_only=True)
    """Side effects decided so far, in execution order."""

    def decision(
        self,
        conditions: Iterable[Mapping[str, Any]] | None,
        desired: Callable[[Mapping[str, Any]], Iterable[SetCondition]],
    ) -> Decision:
        """The new status and the actions, then the conditions `desired` derives from the new
        status that differ from the current `conditions`."""
        return Decision(self.st, [*self.actions, *changed_conditions(conditions, desired(self.st))])
