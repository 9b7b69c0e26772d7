"""What `status.rollout` means to the outside: the conditions, routing and servers it implies.

Both are level functions of the status alone, so a handler may re-apply them on any tick
(e.g. after someone deleted the routing ConfigMap) and a restarted operator derives the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gqr_operator.actions import SetCondition, parse_iso
from gqr_operator.rollout.analysis import ArmCounts
from gqr_operator.rollout.config import ModelRef

RESTING = ("Idle", "Promoted", "RolledBack", "Aborted")
ACTIVE = ("WaitingForCanaryReady", "Progressing", "Paused", "Promoting", "RollingBack")


def counts(a: ArmCounts) -> dict[str, int]:
    """Counts as status stores them."""
    return {"impressions": a.impressions, "clicks": a.clicks}


def counts_since(status: Mapping[str, Any]) -> datetime | None:
    """Where the current step's counts begin: the second after `stepStarted` (which is cut to
    the second; the step began within it). The operator asks `/v1/stats` from here, and the
    machine analyses only counts that begin here or later. None outside a step."""
    started = parse_iso(status.get("stepStarted"))
    return started + timedelta(seconds=1) if started else None


def ref_dict(m: ModelRef) -> dict[str, str]:
    """A model reference as status stores it."""
    return {"version": m.version, "artifactUri": m.artifact_uri}


def ref(d: Mapping[str, Any] | None) -> ModelRef | None:
    """The inverse of `ref_dict`."""
    return ModelRef(str(d["version"]), str(d.get("artifactUri", ""))) if d else None


@dataclass(frozen=True)
class Routing:
    """The gateway's split: `stable_version` gets 100 - canary_weight percent."""

    stable_version: str
    """Model version served by the stable arm."""
    canary_version: str | None
    """Model version of the canary arm; None: no canary arm."""
    canary_weight: int
    """Percent of traffic to the canary (0 when there is none)."""


def desired_routing(status: Mapping[str, Any]) -> Routing | None:
    """The routing this status implies (None before any stable version is known)."""
    stable, cand = ref(status.get("stable")), ref(status.get("candidate"))
    phase = status.get("phase", "Idle")
    if stable is None:
        return None
    if cand is not None and phase in ("Promoting", "Promoted"):
        return Routing(cand.version, None, 0)
    if cand is not None and phase in ("Progressing", "Paused"):
        return Routing(stable.version, cand.version, int(status.get("weight", 0)))
    return Routing(stable.version, None, 0)


def desired_servers(status: Mapping[str, Any]) -> tuple[ModelRef, ...]:
    """The model versions whose LLM servers this status implies: stable, and the candidate for
    as long as a rollout is active (its drain included). Empty before any stable is known."""
    stable, cand = ref(status.get("stable")), ref(status.get("candidate"))
    if stable is None:
        return ()
    if cand is not None and status.get("phase") in ACTIVE and cand.version != stable.version:
        return (stable, cand)
    return (stable,)


def _measured(status: Mapping[str, Any]) -> str:
    a = status.get("lastAnalysis") or {}
    return str(a.get("reason", "no measurement yet"))


def desired_conditions(status: Mapping[str, Any]) -> list[SetCondition]:
    """Progressing, CanaryHealthy and Degraded as the rollout's status implies them."""
    phase = str(status.get("phase", "Idle"))
    cand = (status.get("candidate") or {}).get("version", "")
    step, weight = int(status.get("stepIndex", -1)) + 1, status.get("weight", 0)
    unavailable = bool(status.get("statsUnavailableSince"))
    msg = str(status.get("message", ""))
    if phase == "Paused":
        progressing = SetCondition("Progressing", "False", str(status.get("pauseReason")), cand)
    elif phase in ACTIVE:
        where = f"candidate {cand} at step {step}, {weight}% of traffic"
        progressing = SetCondition("Progressing", "True", phase, where)
    else:
        progressing = SetCondition("Progressing", "False", phase, msg)

    decision = (status.get("lastAnalysis") or {}).get("decision")
    if phase == "Idle":
        healthy = SetCondition("CanaryHealthy", "Unknown", "NoCanary")
    elif phase in ("RolledBack", "RollingBack") and status.get("outcome") == "RolledBack":
        if status.get("rollbackCause") == "Inconclusive":  # not shown worse: not shown better
            healthy = SetCondition("CanaryHealthy", "Unknown", "Inconclusive", msg)
        else:
            healthy = SetCondition("CanaryHealthy", "False", "CanaryWorse", msg)
    elif phase in ("Promoted", "Promoting"):
        healthy = SetCondition("CanaryHealthy", "True", "Promoted", msg)
    elif phase in RESTING or phase == "RollingBack":
        healthy = SetCondition("CanaryHealthy", "Unknown", "Aborted", msg)
    elif unavailable:
        healthy = SetCondition("CanaryHealthy", "Unknown", "StatsUnavailable", _measured(status))
    elif status.get("canaryReady") is False:
        healthy = SetCondition("CanaryHealthy", "False", "CanaryNotReady", f"{cand} not ready")
    elif decision == "pass":
        healthy = SetCondition("CanaryHealthy", "True", "AnalysisPassed", _measured(status))
    else:
        healthy = SetCondition("CanaryHealthy", "Unknown", "Collecting", _measured(status))

    if unavailable and phase in ACTIVE:
        degraded = SetCondition(
            "Degraded", "True", "StatsUnavailable", "gateway /v1/stats unavailable; weight held"
        )
    elif status.get("outcome") == "RolledBack" and phase in ("RollingBack", "RolledBack"):
        degraded = SetCondition("Degraded", "True", "CanaryRolledBack", msg)
    else:
        degraded = SetCondition("Degraded", "False", "AsExpected")
    return [progressing, healthy, degraded]


def summary(status: Mapping[str, Any]) -> dict[str, Any]:
    """`status.stable` / `status.canary` (the CRD's printer-column fields) from `status.rollout`."""
    out: dict[str, Any] = {}
    if status.get("stable"):
        out["stable"] = {"version": status["stable"]["version"]}
    cand, last = status.get("candidate"), status.get("lastAnalysis") or {}
    if cand and status.get("phase") in ACTIVE:
        canary = {
            "version": cand["version"],
            "weight": int(status.get("weight", 0)),
            "step": max(int(status.get("stepIndex", -1)), 0),
            "stepStartedAt": status.get("stepStarted"),
            "decision": last.get("decision"),
            "pValue": last.get("pValue"),
            "ctr": last.get("canaryCtr"),
            **(last.get("canary") or {}),
        }
        out["canary"] = {k: v for k, v in canary.items() if v is not None}
        if last.get("stableCtr") is not None:
            out["stable"]["ctr"] = last["stableCtr"]
    return out
