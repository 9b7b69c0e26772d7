"""How every pipeline entrypoint ends: a JobResult as the last stdout line, then exit 0 or 1.

The operator reads the same JSON from the Job pod's termination message, so `report` can also
write it to a file (e.g. /dev/termination-log). The body's exception becomes a failed result
with its message: a Job always reports before it fails.

Under torchrun (``gqr_training.distributed``) rank 0 reports a success; a failure is reported by
the rank it happened on, its message naming the rank.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gqr_contracts.base import utcnow
from gqr_contracts.job import JobResult
from gqr_training import distributed

log = logging.getLogger(__name__)


def report(job: str, body: Callable[[], dict[str, Any]], result_file: Path | None = None) -> int:
    """Runs `body` (returning JobResult fields: version, artifact_uri, metrics, message) and
    reports its outcome; returns the process exit code."""
    started = utcnow()
    try:
        fields = dict(body())
        if not distributed.is_main():
            return 0  # rank 0 reports the run's result
        metrics = fields.pop("metrics", {}) or {}
        finite = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
        result = JobResult(
            job=job,
            status="succeeded",
            metrics=finite,
            started=started,
            finished=utcnow(),
            **fields,
        )
        code = 0
    except Exception as exc:
        log.exception("%s failed", job)
        where = f"rank {distributed.rank()}: " if distributed.world_size() > 1 else ""
        result = JobResult(
            job=job,
            status="failed",
            message=f"{where}{type(exc).__name__}: {exc}"[:1000],
            started=started,
            finished=utcnow(),
        )
        code = 1
    line = result.to_line()
    if result_file is not None:
        result_file.write_text(line)
    print(line, flush=True)
    return code
