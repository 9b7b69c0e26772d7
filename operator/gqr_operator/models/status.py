"""Typed `.status` of a GQRDeployment: the CRD's status schema is generated from it, so a
field missing here would be pruned by the apiserver from what the handlers patch."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from gqr_operator.models.common import Model
from gqr_operator.models.markers import INT64, list_map

Short = Annotated[str, Field(max_length=32)]
Version = Annotated[str, Field(max_length=63)]
Uri = Annotated[str, Field(max_length=512)]
Count = Annotated[int, Field(ge=0, json_schema_extra=INT64)]
Percent = Annotated[int, Field(ge=0, le=100, json_schema_extra=INT64)]


class Condition(Model):
    """One condition, as in metav1.Condition."""

    type: Annotated[str, Field(max_length=316)]
    """Condition type, CamelCase."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: Annotated[str, Field(max_length=1024)] | None = None
    """Machine-readable CamelCase reason of the last transition."""
    message: Annotated[str, Field(max_length=32768)] | None = None
    """Human-readable details."""
    last_transition_time: datetime | None = None
    """When status last changed."""
    observed_generation: Count | None = None
    """metadata.generation the condition was set for."""


class ArmStatus(Model):
    """A served LLM version and its measured CTR."""

    version: Version | None = None
    """Version of the model (a DNS label, e.g. 20250601-0300)."""
    model_uri: Uri | None = None
    """URI of the model weights."""
    adapter_uri: Uri | None = None
    """URI of the LoRA adapter, when the model is base + adapter."""
    since: datetime | None = None
    """When this version started serving."""
    ctr: float | None = None
    """Measured CTR of this arm (clicked impressions / impressions)."""
    impressions: Count | None = None
    """Impressions served by this arm since it started."""
    clicks: Count | None = None
    """Clicked impressions of this arm."""
    aec: float | None = None
    """Average estimated CTR of the model on the test set (from its training report)."""


class CanaryStatus(ArmStatus):
    """The canary version, its rollout step and the last analysis."""

    impressions: Count | None = None
    """Impressions of the canary arm in the current step (counted from the step's start on),
    as last analysed."""
    clicks: Count | None = None
    """Clicked impressions of the canary arm in the current step, as last analysed."""
    weight: Percent | None = None
    """Percent of traffic sent to the canary now."""
    step: Count | None = None
    """Index of the current rollout step."""
    step_started_at: datetime | None = None
    """When the current step started; its analysis counts impressions from the first whole
    minute after it."""
    decision: Short | None = None
    """Last analysis outcome: wait (not enough evidence yet), pass, fail or inconclusive
    (maxImpressions reached without a significant result)."""
    p_value: float | None = None
    """Latest p-value (or posterior probability) of the canary being worse."""


class CtrStatus(Model):
    """The CTR predictor version being served."""

    version: Version | None = None
    """Version of the CTR model."""
    storage_uri: Uri | None = None
    """URI the InferenceService serves."""
    auc: float | None = None
    """Test AUC from its training report."""


class CorStatus(Model):
    """The co-occurrence index version in use."""

    version: Version | None = None
    """Version of the COR index."""
    collection: Annotated[str, Field(max_length=255)] | None = None
    """Milvus collection holding it, named after this deployment's own prefix
    (gqr_NAMESPACE_NAME_HASH, so deployments may share one Milvus), two underscores and the
    version."""
    pairs: Count | None = None
    """(query, next query) pairs indexed."""


class StepRecord(Model):
    """One step as measured."""

    weight: Percent | None = None
    """Canary weight of the step."""
    canary_ctr: float | None = None
    """Canary CTR at the end of the step."""
    stable_ctr: float | None = None
    """Stable CTR at the end of the step."""
    impressions: Count | None = None
    """Canary impressions in the step."""
    finished_at: datetime | None = None
    """When the step ended."""


class RolloutRecord(Model):
    """One finished rollout."""

    version: Version | None = None
    """Canary version rolled out."""
    outcome: Short | None = None
    """Promoted, RolledBack or Aborted."""
    reason: Annotated[str, Field(max_length=1024)] | None = None
    """Why the rollout ended this way."""
    started_at: datetime | None = None
    """When the canary started."""
    finished_at: datetime | None = None
    """When the decision was made."""
    canary_ctr: float | None = None
    """Canary CTR at the decision."""
    stable_ctr: float | None = None
    """Stable CTR at the decision."""
    impressions: Count | None = None
    """Canary impressions at the decision."""
    steps: list[StepRecord] | None = Field(default=None, max_length=10)
    """Steps reached."""


class GQRDeploymentStatus(Model):
    """Observed state, written by the operator; all rollout state lives here so a restart
    resumes where it stopped."""

    phase: Short | None = None
    """Summary: Invalid, Progressing, Training, Canary, Paused, Ready or Degraded."""
    observed_generation: Annotated[int, Field(json_schema_extra=INT64)] | None = None
    """metadata.generation last acted on."""
    conditions: list[Condition] | None = Field(
        default=None, max_length=32, json_schema_extra=list_map("type")
    )
    """Latest observations (Ready, Progressing, Degraded, TrainingSucceeded, CanaryHealthy,
    TrainingScheduled)."""
    stable: ArmStatus | None = None
    """The stable LLM version."""
    canary: CanaryStatus | None = None
    """The canary LLM version."""
    ctr: CtrStatus | None = None
    """The CTR predictor version being served."""
    cor: CorStatus | None = None
    """The co-occurrence index version in use."""
    # The state machines own these layouts (gqr_operator/pipeline, gqr_operator/rollout), so
    # the CRD keeps their unknown fields instead of typing them here.
    pipeline: dict[str, Any] | None = None
    """State of the update pipeline (owned by the operator: run id, trigger, per-step Jobs and
    results, gate decision)."""
    history: list[RolloutRecord] | None = Field(default=None, max_length=20)
    """Finished rollouts, newest last (at most 20 kept)."""
    rollout: dict[str, Any] | None = None
    """State of the canary rollout (owned by the operator: phase, step, weight, step start,
    analyses and history)."""
