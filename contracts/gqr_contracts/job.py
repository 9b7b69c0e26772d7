"""A pipeline Job's result: what ``cor-build``, ``ctr-train``, ``annotate``, ``sft`` and
``dpo-iterate`` print as their last stdout line and write to the pod's termination message,
and what the operator reads back from it (trusting nothing: :func:`parse_termination_message`)."""

from __future__ import annotations

import json
import math
from typing import Any, Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator

from gqr_contracts.base import Record, Timestamp, describe

JobName = Literal["cor-build", "ctr-train", "annotate", "dpo-iterate", "sft", "eval"]
MAX_MESSAGE = 1024
MAX_LINE_BYTES = 4096
"""A pod termination message holds at most 4 KiB."""

AEC = "aec"
"""dpo-iterate (and the bootstrap stage's sft) metric: the candidate's average expected CTR on
the test set."""
AEC_STABLE = "aec_stable"
"""dpo-iterate (and the bootstrap stage's sft) metric: the stable model's AEC, as it is served,
on the same test set and CTR predictor."""
REQUIRED_METRICS: dict[str, tuple[str, ...]] = {"dpo-iterate": (AEC, AEC_STABLE)}
"""Metrics a succeeded Job must report: the operator's AEC gate reads them (sft reports them when
it is given a CTR predictor: the operator checks them where it gates on sft)."""


class InvalidResult(ValueError):
    """A termination message that is not a usable job result; the text says why."""


class JobResult(Record):
    """What a pipeline Job reports."""

    kind: Literal["job_result"] = "job_result"
    job: JobName
    status: Literal["succeeded", "failed"]
    version: str = Field("", max_length=253, description="Version of the artifact produced.")
    artifact_uri: str = Field("", max_length=1024, description="Where the artifact was written.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Finite numbers only.")
    message: str = Field("", max_length=MAX_MESSAGE, description="The Job's own explanation.")
    started: Timestamp | None = None
    finished: Timestamp | None = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _finite(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        for key, value in raw.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value):
                raise ValueError(f"metric {key!r}={value!r} is not a finite number")
        return raw

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.status != "succeeded":
            return self
        if not self.artifact_uri:
            raise ValueError(f"{self.job} succeeded without an artifact_uri")
        missing = [m for m in REQUIRED_METRICS.get(self.job, ()) if m not in self.metrics]
        if missing or (self.job == "dpo-iterate" and not self.version):
            raise ValueError(f"{self.job} result lacks version or metrics {missing}")
        return self

    def to_line(self) -> str:
        """Compact JSON, at most the 4 KiB a pod termination message allows."""
        line = self.model_dump_json(exclude_none=True)
        if len(line.encode()) > MAX_LINE_BYTES:
            raise ValueError(f"job result is {len(line.encode())} bytes; the limit is 4096")
        return line


def _load(text: str) -> dict[str, Any]:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for candidate in (text.strip(), lines[-1] if lines else ""):
        try:
            doc = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(doc, dict):
            return doc
    raise InvalidResult(f"termination message is not a JSON object: {text.strip()[-120:]!r}")


def parse_termination_message(text: str | None, job: str) -> JobResult:
    """The result ``job``'s pod left in its termination message. With
    ``terminationMessagePolicy: FallbackToLogsOnError`` a crashed pod's message is its log
    tail, so the last non-empty line is tried too. Raises :class:`InvalidResult` saying why."""
    if not text or not text.strip():
        raise InvalidResult(f"{job} wrote no termination message (expected a job_result JSON)")
    doc = _load(text)
    if doc.get("kind") != "job_result":
        raise InvalidResult(f"kind={doc.get('kind')!r} (expected 'job_result')")
    if doc.get("job") != job:
        raise InvalidResult(f"job={doc.get('job')!r} but this is the {job} step")
    if isinstance(doc.get("message"), str):
        doc["message"] = doc["message"][:MAX_MESSAGE]
    try:
        return JobResult.model_validate(doc)
    except ValidationError as exc:
        raise InvalidResult(describe(exc, limit=1)) from None
