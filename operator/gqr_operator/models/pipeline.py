"""Spec sections of the update pipeline: log and artifact stores, retraining Jobs."""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import Field, model_validator

from gqr_operator.models.common import (
    MAX_NODES,
    OBJECT_URI_PATTERN,
    Model,
    ResourceRequirements,
    SecretRef,
)
from gqr_operator.models.markers import Rule, cel_string, validations
from gqr_operator.models.placement import Placement

# Five cron fields or a macro; croniter validates fully in the operator (a status condition).
CRON_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|([0-9*?/,LW#A-Za-z-]+\s+){4}[0-9*?/,LW#A-Za-z-]+)$"
)


class Logs(Model):
    """Where the gateway appends impression and click records."""

    uri: str = Field(max_length=512, pattern=OBJECT_URI_PATTERN)
    """Root URI of the log store: s3://, gs://, pvc://<claimName>/<path> or file://."""
    retention_days: int = Field(default=30, ge=1, le=3650)
    """Days of logs kept. The gateway pods delete the day folders (every record kind) whose
    whole UTC day is older than this, hourly, never a segment a writer still has open."""
    secret_ref: SecretRef | None = None
    """Secret whose keys are exposed as environment variables to the gateway and the pipeline
    Jobs to reach the log store (e.g. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for s3://,
    GOOGLE_APPLICATION_CREDENTIALS for gs://)."""
    endpoint: str | None = Field(default=None, max_length=512, pattern=r"^https?://\S+$")
    """Endpoint URL of an S3-compatible store (e.g. MinIO) for an s3:// URI, given to every
    pod that reads or writes the logs as AWS_ENDPOINT_URL. Left out: AWS's own."""
    region: str | None = Field(default=None, max_length=63)
    """Region of the object store (AWS_DEFAULT_REGION)."""


class Artifacts(Model):
    """Root of versioned artifacts: ctr/, llm/, cor/, reports/."""

    uri: str = Field(max_length=512, pattern=OBJECT_URI_PATTERN)
    """Root URI of the artifact store: s3://, gs://, pvc://<claimName>/<path> or file://."""
    secret_ref: SecretRef | None = None
    """Secret whose keys are exposed as environment variables to the pipeline Jobs, the gateway
    (which reads the COR versions) and artifact fetchers."""
    endpoint: str | None = Field(default=None, max_length=512, pattern=r"^https?://\S+$")
    """Endpoint URL of an S3-compatible store (e.g. MinIO) for an s3:// URI, given to every
    pod that reads or writes artifacts as AWS_ENDPOINT_URL. Left out: AWS's own."""
    region: str | None = Field(default=None, max_length=63)
    """Region of the object store (AWS_DEFAULT_REGION)."""


class CorTraining(Model):
    """The co-occurrence (COR) index rebuild."""

    window_days: int = Field(default=30, ge=1, le=365)
    """Days of sessions the co-occurrence pairs are counted over."""


class CtrTraining(Model):
    """The CTR predictor retraining."""

    window_days: int = Field(default=14, ge=1, le=90)
    """Days of impression-click logs trained on."""
    epochs: int = Field(default=6, ge=1, le=50)
    """Training epochs (at most; early stopping after 2 without a held-out logloss gain). Each
    epoch sees every click and a fresh tenth of the non-clicks."""
    nodes: int = Field(default=1, ge=1, le=MAX_NODES)
    """Machines (pods) the ctr-train step runs on. 1: one Job pod. More: one JobSet
    (jobset.x-k8s.io/v1alpha2, which must be installed in the cluster) of that many pods, each
    with spec.training.resources, running the step under torchrun with JobSet's rendezvous
    (docs/operations.md, Multi-node stages)."""


class DpoTraining(Model):
    """Iterative DPO with CTR-guided beam search."""

    beta: float = Field(default=0.1, gt=0.0, le=10.0)
    """DPO beta (strength of the KL regularisation)."""
    delta: float = Field(default=0.005, ge=0.0, le=1.0)
    """Stop iterating when the test-set average estimated CTR (AEC) gains less than this."""
    max_iterations: int = Field(default=5, ge=1, le=20)
    """Most DPO iterations per run."""
    beam_size: int = Field(default=4, ge=1, le=16)
    """Beam width of the CTR-guided beam search for chosen responses."""
    candidates: int = Field(default=8, ge=2, le=64)
    """Next-query samples per beam at each step of the CTR-guided beam search (C), spread over
    the sampling temperatures."""
    prompts_per_iteration: int = Field(default=1024, ge=8, le=100000)
    """Log prompts each DPO iteration builds preference pairs from (at most one pair per
    prompt). More pairs distil more of the reward model's choices into the model per round
    (measured on the simulated world, docs/STATUS.md) at a cost linear in the prompts."""
    lora: bool = True
    """Train LoRA adapters instead of all weights; they are merged after every round, so the
    candidate is served as full weights."""
    nodes: int = Field(default=1, ge=1, le=MAX_NODES)
    """Machines (pods) the dpo-iterate step runs on. 1: one Job pod. More: one JobSet
    (jobset.x-k8s.io/v1alpha2, which must be installed in the cluster) of that many pods, each
    with spec.training.resources, running the step under torchrun with JobSet's rendezvous
    (docs/operations.md, Multi-node stages)."""


class Gate(Model):
    """What a trained model must reach before it becomes a canary."""

    min_aec_gain: float = Field(default=0.0, ge=-1.0, le=1.0)
    """Least AEC gain over the stable model for the new version to be rolled out."""


class Training(Placement):
    """The cor-build -> ctr-train -> dpo-iterate Jobs and their schedule."""

    schedule: str = Field(
        default="0 3 * * 0",
        max_length=128,
        json_schema_extra=validations(
            Rule(
                f"self.matches({cel_string(CRON_PATTERN)})",
                "spec.training.schedule must be a cron expression of 5 fields (e.g. '0 3 * * 0') "
                "or a macro like @daily",
            )
        ),
    )
    """Cron schedule (5 fields, or @daily/@weekly/...) of pipeline runs, in UTC. Fully
    validated by the operator (condition TrainingScheduled)."""
    suspend: bool = False
    """Stop starting scheduled runs; a running one finishes."""
    image: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    """Container image of the pipeline Jobs. Defaults to the gqr-trainer image of the
    operator's version."""
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    """Compute resources of the pipeline Job container. Keys left out get the operator's
    defaults (4 CPU, 16Gi memory, 1 nvidia.com/gpu); requests and limits are always both set.
    With N > 1 nvidia.com/gpu, ctr-train, sft and dpo-iterate run as N processes under torchrun,
    one per GPU (docs/distributed.md)."""
    backoff_limit: int = Field(default=2, ge=0, le=10)
    """Retries of a failed Job pod."""
    active_deadline_seconds: int = Field(default=21600, ge=60, le=604800)
    """Longest time one Job may run."""
    ttl_seconds_after_finished: int = Field(default=86400, ge=0, le=2592000)
    """Seconds a finished Job is kept (its result is copied into status first)."""
    failure_backoff_minutes: int = Field(default=60, ge=0, le=10080)
    """After a failed run, scheduled fires are skipped for this long, doubled after each
    further failure in a row (60: 1 h, then 2 h, ...). A manual trigger is never held back."""
    max_consecutive_failures: int = Field(default=3, ge=0, le=100)
    """Failed runs in a row after which scheduled runs stop (status.pipeline.suspended, the
    TrainingScheduled condition False with reason SuspendedAfterFailures) until a run succeeds;
    start one with the gqr.dev/retrain annotation once the cause is fixed. 0: never stop."""
    cor: CorTraining = Field(default_factory=CorTraining)
    """The co-occurrence index rebuild (cor-build)."""
    ctr: CtrTraining = Field(default_factory=CtrTraining)
    """The CTR predictor retraining (ctr-train)."""
    dpo: DpoTraining = Field(default_factory=DpoTraining)
    """Iterative DPO with CTR-guided beam search (dpo-iterate)."""
    gate: Gate = Field(default_factory=Gate)
    """What a trained model must reach before it becomes a canary."""

    @model_validator(mode="after")
    def _schedule(self) -> Self:
        if not re.fullmatch(CRON_PATTERN, self.schedule):
            raise ValueError(
                f"spec.training.schedule={self.schedule!r} is not a cron expression "
                "(accepted: 5 fields like '0 3 * * 0', or @daily/@weekly/...)"
            )
        return self
