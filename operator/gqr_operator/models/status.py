"""Typed `.status` of a GQRDeployment: what the handlers patch, mirroring the CRD's status
schema (fields the schema lacks would be pruned by the apiserver)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from gqr_operator.models.common import Model

Short = Annotated[str, Field(max_length=32)]
Version = Annotated[str, Field(max_length=63)]
Uri = Annotated[str, Field(max_length=512)]
Count = Annotated[int, Field(ge=0)]


class Condition(Model):
    """One condition, as in metav1.Condition."""

    type: Annotated[str, Field(max_length=316)]
    status: Literal["True", "False", "Unknown"]
    reason: Annotated[str, Field(max_length=1024)] | None = None
    message: Annotated[str, Field(max_length=32768)] | None = None
    last_transition_time: datetime | None = None
    observed_generation: Count | None = None


class ArmStatus(Model):
    """A served LLM version and its measured CTR."""

    version: Version | None = None
    model_uri: Uri | None = None
    adapter_uri: Uri | None = None
    since: datetime | None = None
    ctr: float | None = None
    impressions: Count | None = None
    clicks: Count | None = None
    aec: float | None = None


class CanaryStatus(ArmStatus):
    """The canary version, its rollout step and the last analysis."""

    weight: Annotated[int, Field(ge=0, le=100)] | None = None
    step: Count | None = None
    step_started_at: datetime | None = None
    decision: Short | None = None
    p_value: float | None = None


class CtrStatus(Model):
    """The CTR predictor version being served."""

    version: Version | None = None
    storage_uri: Uri | None = None
    auc: float | None = None


class CorStatus(Model):
    """The co-occurrence index version in use."""

    version: Version | None = None
    collection: Annotated[str, Field(max_length=255)] | None = None
    pairs: Count | None = None


class JobStatus(Model):
    """One pipeline Job of the current run."""

    step: Short
    name: Version | None = None
    phase: Short | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    artifact_uri: Uri | None = None
    metrics: dict[str, Any] | None = None


class PipelineStatus(Model):
    """State of the update pipeline."""

    run_id: Version | None = None
    phase: Short | None = None
    step: Short | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_schedule_time: datetime | None = None
    next_schedule_time: datetime | None = None
    message: Annotated[str, Field(max_length=4096)] | None = None
    jobs: list[JobStatus] | None = Field(default=None, max_length=8)


class StepRecord(Model):
    """One rollout step as measured."""

    weight: Annotated[int, Field(ge=0, le=100)] | None = None
    canary_ctr: float | None = None
    stable_ctr: float | None = None
    impressions: Count | None = None
    finished_at: datetime | None = None


class RolloutRecord(Model):
    """One finished rollout."""

    version: Version | None = None
    outcome: Short | None = None
    reason: Annotated[str, Field(max_length=1024)] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    canary_ctr: float | None = None
    stable_ctr: float | None = None
    impressions: Count | None = None
    steps: list[StepRecord] | None = Field(default=None, max_length=10)


class GQRDeploymentStatus(Model):
    """`.status`; dump with `model_dump(by_alias=True, exclude_none=True, mode="json")`."""

    phase: Short | None = None
    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(default=None, max_length=32)
    stable: ArmStatus | None = None
    canary: CanaryStatus | None = None
    ctr: CtrStatus | None = None
    cor: CorStatus | None = None
    pipeline: dict[str, Any] | None = None  # owned by gqr_operator.pipeline (see its README)
    rollout: dict[str, Any] | None = None  # owned by gqr_operator.rollout
    history: list[RolloutRecord] | None = Field(default=None, max_length=20)
