"""What one operator tick reads from the world before the pure machines decide: a pipeline
Job's state and result, whether a candidate's LLM server is available, and the gateway's
``/v1/stats`` counts (`gqr_contracts.stats`). Reads only; nothing here writes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import ValidationError

from gqr_contracts.base import describe
from gqr_contracts.stats import StatsAnswer
from gqr_operator.kube import KINDS, Kube
from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.pipeline.config import JobObservation
from gqr_operator.resources import gateway
from gqr_operator.resources.llm import llm_name
from gqr_operator.rollout.analysis import ArmCounts
from gqr_operator.rollout.config import Stats

log = logging.getLogger(__name__)
JOB = KINDS[("batch/v1", "Job")]
POD = KINDS[("v1", "Pod")]
DEPLOYMENT = KINDS[("apps/v1", "Deployment")]
STATS_TIMEOUT_S = 3.0


def observe_job(kube: Kube, namespace: str, name: str) -> JobObservation:
    """The Job's state and, when it finished, its pod's termination message."""
    job = kube.get(JOB, namespace, name)
    if job is None:
        return JobObservation("absent")
    conds = {c["type"]: c for c in (job.get("status") or {}).get("conditions") or []}
    done = conds.get("Complete", {}).get("status") == "True"
    failed = conds.get("Failed", {}).get("status") == "True"
    if not (done or failed):
        return JobObservation("active")
    message = None
    for pod in kube.list(POD, namespace, f"job-name={name}"):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            message = ((cs.get("state") or {}).get("terminated") or {}).get("message") or message
    if failed:
        why = f"{conds['Failed'].get('reason', '')}: {conds['Failed'].get('message', '')}"
        return JobObservation("failed", message, why.strip(": "))
    return JobObservation("succeeded", message)


def is_available(obj: dict[str, Any] | None) -> bool:
    """Whether a Deployment reports Available."""
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conds)


def llm_available(kube: Kube, namespace: str, cr_name: str, version: str) -> bool:
    """Whether the LLM server Deployment of ``version`` reports Available."""
    return is_available(kube.get(DEPLOYMENT, namespace, llm_name(cr_name, version)))


def stats_url(name: str, namespace: str, spec: GQRDeploymentSpec) -> str:
    if spec.rollout.analysis.stats_url:
        return spec.rollout.analysis.stats_url
    # The gateway's longest window (14 days): with `since` = the step's start, the counts are
    # the step's own until a step outlasts it.
    host = f"{gateway.gateway_name(name)}.{namespace}.svc.cluster.local"
    return f"http://{host}:{gateway.INTERNAL_PORT}/v1/stats?window=14d"


class StatsUnavailable(Exception):
    """The stats endpoint could not be read, or its answer cannot be attributed to a step."""


def parse_stats(doc: Any, stable: str, canary: str) -> Stats:
    """Counts of the two versions under test from a `/v1/stats?since=...` answer. A success is
    an impression with at least one click (the list CTR the analysis tests as a Bernoulli
    rate). An answer without ``start`` comes from an endpoint that ignores ``since``: its
    counts may hold traffic from before the step, so it is refused."""
    if isinstance(doc, dict) and "start" not in doc:
        raise StatsUnavailable(
            "the answer has no `start`: the endpoint ignores `since`, so its counts cannot be "
            "limited to the step; upgrade the gateway (or the statsUrl service)"
        )
    try:
        answer = StatsAnswer.model_validate(doc)
    except ValidationError as exc:
        raise StatsUnavailable(f"not a /v1/stats answer: {describe(exc)}"[:300]) from None
    totals = {"stable": [0, 0], "canary": [0, 0]}
    want = {"stable": stable, "canary": canary}
    for row in answer.arms:
        if want.get(row.arm) == row.model_version:
            totals[row.arm][0] += row.impressions
            totals[row.arm][1] += row.successes
    when = datetime.fromtimestamp(answer.start, UTC)
    return Stats(ArmCounts(*totals["stable"]), ArmCounts(*totals["canary"]), when)


def fetch_stats(url: str, stable: str, canary: str, since: str | None) -> Stats:
    """Counts since `since` (the step's start, ISO 8601; None before a step: the window);
    `since` joins the URL's own query. Raises StatsUnavailable when the gateway cannot be
    reached or answers garbage (the rollout then holds)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "since"]
    if since:
        query.append(("since", since))
    full = urlunsplit(parts._replace(query=urlencode(query)))
    try:
        resp = httpx.get(full, timeout=STATS_TIMEOUT_S)
        resp.raise_for_status()
        return parse_stats(resp.json(), stable, canary)
    except StatsUnavailable as exc:
        log.warning("stats from %s refused: %s", full, exc)
        raise
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("stats from %s unavailable: %s", full, exc)
        raise StatsUnavailable(f"{type(exc).__name__}: {exc}"[:200]) from exc
