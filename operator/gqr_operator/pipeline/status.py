"""The conditions `status.pipeline` implies: TrainingSucceeded and TrainingScheduled.

A level function of the status alone, so re-applying it on any tick changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gqr_operator.actions import ConditionStatus, SetCondition

_TRAINING: dict[str, tuple[ConditionStatus, str]] = {
    "Idle": ("Unknown", "NeverRun"),
    "Running": ("Unknown", "Running"),
    "Succeeded": ("True", "GatePassed"),
    "Failed": ("False", "StepFailed"),
    "NotPromoted": ("False", "GateNotPassed"),
}


def desired_conditions(status: Mapping[str, Any]) -> list[SetCondition]:
    """TrainingSucceeded from the run's phase; TrainingScheduled from the schedule check."""
    phase = str(status.get("phase", "Idle"))
    cond_status, reason = _TRAINING.get(phase, ("Unknown", phase))
    message = str(status.get("message", ""))
    if phase == "Running":
        message = f"run {status.get('runId')}: {status.get('currentStep')}"
    training = SetCondition("TrainingSucceeded", cond_status, reason, message)
    err = status.get("scheduleError")
    suspended = status.get("suspended")
    if err:
        scheduled = SetCondition("TrainingScheduled", "False", "InvalidSchedule", str(err))
    elif suspended:
        scheduled = SetCondition(
            "TrainingScheduled", "False", "SuspendedAfterFailures", str(suspended["message"])
        )
    else:
        last = status.get("lastScheduleTime", "")
        scheduled = SetCondition("TrainingScheduled", "True", "Scheduled", f"last fire {last}")
    return [training, scheduled]
