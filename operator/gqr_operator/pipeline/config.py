"""Inputs of the pipeline machine: its typed config (from the spec) and the observed Job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gqr_operator.resources.naming import child_name

STEPS = ("cor-build", "ctr-train", "dpo-iterate")
BOOTSTRAP_STEPS = ("annotate", "cor-build", "ctr-train", "sft")
"""A bootstrap run: the teacher's annotations first (a bad teacher fails before any training),
the COR index and the CTR predictor the gate measures with, then SFT with the gate's AEC."""
# The artifact of each step becomes this input of the later steps (resources.jobs.DPO_INPUTS,
# SFT_INPUTS).
INPUT_OF = {"cor-build": "cor_uri", "ctr-train": "ctr_uri", "annotate": "annotations_uri"}
Stage = Literal["bootstrap", "regular"]
JobState = Literal["absent", "active", "succeeded", "failed"]


def job_name(cr_name: str, step: str, run_id: str) -> str:
    """`<cr>-<step>-<run-id>`, a DNS-1123 label of at most 63 characters (hashed when longer);
    the same name `resources.jobs.build_pipeline_job` gives the Job."""
    return child_name(cr_name, step, run_id)


@dataclass(frozen=True)
class PipelineConfig:
    """The update pipeline, from `spec.training`."""

    cr_name: str
    """Name of the GQRDeployment (prefix of every Job name)."""
    base_model: str
    """URI of the stable model dpo-iterate starts from; frozen into status at run start."""
    schedule: str = "0 3 * * 0"
    """Cron expression, evaluated in UTC."""
    suspend: bool = False
    """Ignore the schedule (an on-demand trigger still starts a run)."""
    min_aec_gain: float = 0.0
    """Gate: absolute AEC gain (candidate - stable, same test set and CTR predictor) the
    candidate must exceed, strictly, to become a canary. AEC is a click probability, so
    0.002 means +0.2 CTR points."""
    failure_backoff_s: float = 3600.0
    """Scheduled fires within this long of a failed run are skipped; doubled per further
    failure in a row."""
    max_consecutive_failures: int = 3
    """Failed runs in a row that suspend scheduled runs (0: never)."""
    steps: tuple[str, ...] = STEPS
    """Step order of a regular run; each step's Job gets the artifacts of the ones before."""
    bootstrap: bool = False
    """No fine-tuned model has been promoted yet and spec.bootstrap is set: a run starting now
    is a bootstrap run (its stage is frozen into status at run start)."""
    bootstrap_steps: tuple[str, ...] = BOOTSTRAP_STEPS
    """Step order of a bootstrap run."""

    @property
    def stage(self) -> Stage:
        """The stage a run starting now belongs to."""
        return "bootstrap" if self.bootstrap else "regular"

    def run_steps(self) -> tuple[str, ...]:
        """The steps of a run starting now."""
        return self.bootstrap_steps if self.bootstrap else self.steps


@dataclass(frozen=True)
class JobObservation:
    """What the handler saw of the current step's Job (`current_job(status)` names it)."""

    state: JobState
    """`absent` (not found), `active`, `succeeded` or `failed` (Job conditions)."""
    termination_message: str | None = None
    """The pod's termination message (the job_result JSON)."""
    reason: str = ""
    """For `failed`: the Job's Failed condition reason and message."""
    failure: str = "JobFailed"
    """For `failed` without a result: the step's failure reason in status (e.g.
    `EngineNotInstalled` when a multi-node step's JobSet API is not served)."""
