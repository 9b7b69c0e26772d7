"""Canary rollout logic, pure (no I/O): CTR analysis (mSPRT, horizon) and the rollout machine.

The operator's tick feeds it plain status dicts and observations and executes the actions it
returns (`gqr_operator.actions`); routing and LLM servers follow from the status it keeps. See
README.md in this folder for the test choice, state diagram and status layout.
"""

from gqr_operator.actions import (
    Action,
    CreateJob,
    Decision,
    Event,
    SetCondition,
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
    Routing,
    counts_since,
    desired_conditions,
    desired_routing,
    desired_servers,
    summary,
)

__all__ = [
    "Action",
    "AnalysisConfig",
    "AnalysisResult",
    "ArmCounts",
    "Controls",
    "CreateJob",
    "Decision",
    "Event",
    "ModelRef",
    "Observation",
    "RolloutConfig",
    "Routing",
    "SetCondition",
    "StartRollout",
    "Stats",
    "Step",
    "analyse",
    "counts_since",
    "desired_conditions",
    "desired_routing",
    "desired_servers",
    "start",
    "summary",
    "tick",
]
