"""Canary rollout logic, pure (no I/O): CTR analysis (mSPRT) and the rollout state machine.

The kopf handlers feed it plain status dicts and observations and execute the actions it
returns; see README.md in this folder for the test choice, state diagram and status layout.
"""

from gqr_operator.rollout.actions import (
    Action,
    CreateCanaryDeployment,
    CreateJob,
    Decision,
    DeleteLLMDeployment,
    Event,
    SetCondition,
    SetRouting,
    StartRollout,
)
from gqr_operator.rollout.analysis import AnalysisConfig, AnalysisResult, ArmCounts, analyse
from gqr_operator.rollout.config import (
    Controls,
    ModelRef,
    Observation,
    RolloutConfig,
    Stats,
    Step,
)
from gqr_operator.rollout.machine import start, tick
from gqr_operator.rollout.status import (
    counts_since,
    desired_conditions,
    desired_routing,
    summary,
)

__all__ = [
    "Action",
    "AnalysisConfig",
    "AnalysisResult",
    "ArmCounts",
    "Controls",
    "CreateCanaryDeployment",
    "CreateJob",
    "Decision",
    "DeleteLLMDeployment",
    "Event",
    "ModelRef",
    "Observation",
    "RolloutConfig",
    "SetCondition",
    "SetRouting",
    "StartRollout",
    "Stats",
    "Step",
    "analyse",
    "counts_since",
    "desired_conditions",
    "desired_routing",
    "start",
    "summary",
    "tick",
]
