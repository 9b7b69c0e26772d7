"""A pipeline Job's result as the operator keeps it: the contract's parse of the pod's
termination message (`gqr_contracts.job`), with the artifact's path turned into the URI the
next steps read, and its `status.pipeline.steps[].result` form."""

from __future__ import annotations

from typing import Any

from gqr_contracts.job import JobResult, parse_termination_message
from gqr_operator.resources.storage import uri_for_path


def parse_result(text: str | None, step: str) -> JobResult:
    """Validate the termination message of `step`'s Job (raises `InvalidResult`)."""
    result = parse_termination_message(text, step)
    return result.model_copy(update={"artifact_uri": uri_for_path(result.artifact_uri)})


def result_status(result: JobResult) -> dict[str, Any]:
    """JSON-ready for `status.pipeline.steps[].result`."""
    return {
        "version": result.version,
        "artifactUri": result.artifact_uri,
        "metrics": dict(result.metrics),
        "message": result.message,
    }
