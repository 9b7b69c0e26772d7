"""Spec sections of the update pipeline: log and artifact stores, retraining Jobs."""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import Field, model_validator

from gqr_operator.models.common import (
    OBJECT_URI_PATTERN,
    Model,
    ResourceRequirements,
    SecretRef,
    Toleration,
)

# Five cron fields or a macro; croniter validates fully in the operator (a status condition).
CRON_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|([0-9*?/,LW#A-Za-z-]+\s+){4}[0-9*?/,LW#A-Za-z-]+)$"
)


class Logs(Model):
    """Where the gateway appends impression and click records."""

    uri: str = Field(max_length=512, pattern=OBJECT_URI_PATTERN)
    retention_days: int = Field(default=30, ge=1, le=3650)
    secret_ref: SecretRef | None = None


class Artifacts(Model):
    """Root of versioned artifacts: ctr/, llm/, cor/, reports/."""

    uri: str = Field(max_length=512, pattern=OBJECT_URI_PATTERN)
    secret_ref: SecretRef | None = None


class CorTraining(Model):
    """The co-occurrence (COR) index rebuild."""

    window_days: int = Field(default=30, ge=1, le=365)


class CtrTraining(Model):
    """The CTR predictor retraining."""

    window_days: int = Field(default=14, ge=1, le=90)
    epochs: int = Field(default=6, ge=1, le=50)


class DpoTraining(Model):
    """Iterative DPO with CTR-guided beam search."""

    beta: float = Field(default=0.1, gt=0.0, le=10.0)
    delta: float = Field(default=0.005, ge=0.0, le=1.0)
    max_iterations: int = Field(default=5, ge=1, le=20)
    beam_size: int = Field(default=4, ge=1, le=16)
    candidates: int = Field(default=8, ge=2, le=64)
    prompts_per_iteration: int = Field(default=1024, ge=8, le=100000)
    lora: bool = True


class Gate(Model):
    """What a trained model must reach before it becomes a canary."""

    min_aec_gain: float = Field(default=0.0, ge=-1.0, le=1.0)


NodeSelector = dict[str, Annotated[str, Field(max_length=63)]]


class Training(Model):
    """The cor-build -> ctr-train -> dpo-iterate Jobs and their schedule."""

    schedule: str = Field(default="0 3 * * 0", max_length=128)
    suspend: bool = False
    image: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    node_selector: NodeSelector = Field(default_factory=dict, max_length=16)
    pod_labels: NodeSelector = Field(default_factory=dict, max_length=16)
    tolerations: list[Toleration] = Field(default_factory=list, max_length=16)
    backoff_limit: int = Field(default=2, ge=0, le=10)
    active_deadline_seconds: int = Field(default=21600, ge=60, le=604800)
    ttl_seconds_after_finished: int = Field(default=86400, ge=0, le=2592000)
    cor: CorTraining = Field(default_factory=CorTraining)
    ctr: CtrTraining = Field(default_factory=CtrTraining)
    dpo: DpoTraining = Field(default_factory=DpoTraining)
    gate: Gate = Field(default_factory=Gate)

    @model_validator(mode="after")
    def _schedule(self) -> Self:
        if not re.fullmatch(CRON_PATTERN, self.schedule):
            raise ValueError(
                f"spec.training.schedule={self.schedule!r} is not a cron expression "
                "(accepted: 5 fields like '0 3 * * 0', or @daily/@weekly/...)"
            )
        return self
