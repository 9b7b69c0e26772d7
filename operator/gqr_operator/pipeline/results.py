"""Read a pipeline Job's result from its pod termination message, trusting nothing.

The Job writes one JSON line (the contract of `gqr_serving.records.JobResult`, restated here
because the operator may not import serving):
{"kind":"job_result","job":...,"status":"succeeded"|"failed","version":...,
 "artifact_uri":...,"metrics":{...},"message":...}
With `terminationMessagePolicy: FallbackToLogsOnError` a crashed pod's message is its log
tail, so the last non-empty line is tried too. Anything else raises `InvalidResult`, which the
machine turns into a failed step with the reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from gqr_operator.resources.storage import uri_for_path

AEC = "aec"
"""dpo-iterate metric: the candidate's average expected CTR on the test set."""
AEC_STABLE = "aec_stable"
"""dpo-iterate metric: the stable model's AEC on the same test set and CTR predictor."""
REQUIRED_METRICS = {"dpo-iterate": (AEC, AEC_STABLE)}
_MAX_MESSAGE = 1024


class InvalidResult(ValueError):
    """The termination message is not a usable job result; the text says why."""


@dataclass(frozen=True)
class JobResult:
    """A validated job result."""

    job: str
    """The step that wrote it."""
    status: Literal["succeeded", "failed"]
    """What the Job itself reports."""
    version: str = ""
    """Version of the artifact produced."""
    artifact_uri: str = ""
    """Where the artifact was written."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Finite numbers only."""
    message: str = ""
    """The Job's own explanation (shortened to 1 KiB)."""

    def to_status(self) -> dict[str, Any]:
        """JSON-ready for `status.pipeline.steps[].result`."""
        return {
            "version": self.version,
            "artifactUri": self.artifact_uri,
            "metrics": dict(self.metrics),
            "message": self.message,
        }


def _load(text: str) -> dict[str, Any]:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for candidate in (text.strip(), lines[-1] if lines else ""):
        try:
            doc = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(doc, dict):
            return doc
    snippet = text.strip()[-120:]
    raise InvalidResult(f"termination message is not a JSON object: {snippet!r}")


def _metrics(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise InvalidResult(f"metrics must be an object of numbers, got {type(raw).__name__}")
    out = {}
    for key, value in raw.items():
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value):
            raise InvalidResult(f"metric {key!r}={value!r} is not a finite number")
        out[str(key)] = float(value)
    return out


def parse_result(text: str | None, step: str) -> JobResult:
    """Validate the termination message of `step`'s Job."""
    if not text or not text.strip():
        raise InvalidResult(f"{step} wrote no termination message (expected a job_result JSON)")
    doc = _load(text)
    if doc.get("kind") != "job_result":
        raise InvalidResult(f"kind={doc.get('kind')!r} (expected 'job_result')")
    if doc.get("job") != step:
        raise InvalidResult(f"job={doc.get('job')!r} but this is the {step} step")
    status = doc.get("status")
    if status not in ("succeeded", "failed"):
        raise InvalidResult(f"status={status!r} (expected 'succeeded' or 'failed')")
    strings = {k: doc.get(k, "") for k in ("version", "artifact_uri", "message")}
    bad = [k for k, v in strings.items() if not isinstance(v, str)]
    if bad:
        raise InvalidResult(f"fields {bad} must be strings")
    result = JobResult(
        job=step,
        status=status,
        version=strings["version"],
        artifact_uri=uri_for_path(strings["artifact_uri"]),
        metrics=_metrics(doc.get("metrics", {})),
        message=strings["message"][:_MAX_MESSAGE],
    )
    if status == "succeeded":
        if not result.artifact_uri:
            raise InvalidResult(f"{step} succeeded without an artifact_uri")
        missing = [m for m in REQUIRED_METRICS.get(step, ()) if m not in result.metrics]
        if missing or (step == "dpo-iterate" and not result.version):
            raise InvalidResult(f"{step} result lacks version or metrics {missing}")
    return result
