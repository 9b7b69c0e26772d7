"""The update pipeline, pure (no I/O): cron and annotation triggers, one Job per step
(cor-build -> ctr-train -> dpo-iterate), job results from termination messages, the AEC gate.
"""

from gqr_contracts.job import AEC, AEC_STABLE, InvalidResult, JobResult
from gqr_operator.pipeline.config import STEPS, JobObservation, PipelineConfig, job_name
from gqr_operator.pipeline.machine import current_job, tick
from gqr_operator.pipeline.results import parse_result
from gqr_operator.pipeline.schedule import due, latest_fire, next_fire, schedule_error

__all__ = [
    "AEC",
    "AEC_STABLE",
    "STEPS",
    "InvalidResult",
    "JobObservation",
    "JobResult",
    "PipelineConfig",
    "current_job",
    "due",
    "job_name",
    "latest_fire",
    "next_fire",
    "parse_result",
    "schedule_error",
    "tick",
]
