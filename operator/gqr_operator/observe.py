"""What one operator tick reads from the world before the pure machines decide: a pipeline
Job's state and result, whether a candidate's LLM server is available, and the gateway's
``/v1/stats`` counts (`gqr_contracts.stats`). Reads only; nothing here writes."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import ValidationError

from gqr_contracts.base import describe
from gqr_contracts.stats import StatsAnswer
from gqr_operator.kube import KINDS, ApiError, Kube
from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.pipeline.config import JobObservation
from gqr_operator.resources import gateway, jobset
from gqr_operator.resources.llm import llm_name
from gqr_operator.rollout.analysis import ArmCounts
from gqr_operator.rollout.config import Stats

log = logging.getLogger(__name__)
JOB = KINDS[("batch/v1", "Job")]
POD = KINDS[("v1", "Pod")]
DEPLOYMENT = KINDS[("apps/v1", "Deployment")]
JOBSET = KINDS[(jobset.API_VERSION, jobset.KIND)]
ENGINE_NOT_INSTALLED = "EngineNotInstalled"
STATS_TIMEOUT_S = 3.0


def observe_step(kube: Kube, namespace: str, name: str, nodes: int) -> JobObservation:
    """The current step's workload: the JobSet of a step on several `nodes`, else its Job (the
    other kind is looked for too when the expected one is absent: `nodes` may have changed
    since the run created it). A multi-node step in a cluster that does not serve JobSet
    fails, naming what to install."""
    if nodes > 1:
        seen = observe_jobset(kube, namespace, name) or observe_job(kube, namespace, name)
        if seen is None and not jobset_served(kube):
            return JobObservation(
                "failed", reason=jobset_missing(nodes), failure=ENGINE_NOT_INSTALLED
            )
    else:
        seen = observe_job(kube, namespace, name) or observe_jobset(kube, namespace, name)
    return seen or JobObservation("absent")


def jobset_served(kube: Kube) -> bool:
    """Whether the apiserver serves jobset.x-k8s.io/v1alpha2 (JobSet's CRD is installed)."""
    try:
        kube.request("GET", f"/apis/{jobset.API_VERSION}")
        return True
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise


def jobset_missing(nodes: int) -> str:
    """What a user reads when a multi-node step meets a cluster without JobSet."""
    return (
        f"the step asks for {nodes} nodes, which run as a JobSet ({jobset.API_VERSION}), but "
        "this cluster does not serve that API: install JobSet (v0.12.0 or later; Kubeflow "
        "Trainer v2 installs it) or set the step's nodes to 1"
    )


def _terminated(pod: dict[str, Any]) -> dict[str, Any]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        done = (cs.get("state") or {}).get("terminated")
        if done:
            return dict(done)
    return {}


def _said(message: str) -> str:
    """What a failed rank said: its job_result's message, else its log's last line."""
    try:
        doc = json.loads(message)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "job_result":
        return str(doc.get("message") or "")[-300:]
    lines = [line for line in message.splitlines() if line.strip()]
    return lines[-1][-300:] if lines else ""


def observe_jobset(kube: Kube, namespace: str, name: str) -> JobObservation | None:
    """A multi-node step's JobSet: its state; when it finished, rank 0's termination message
    (the pod of completion index 0 in the latest restart) and, when it failed, JobSet's reason
    with the ranks that failed. None when there is no such JobSet (or no JobSet API)."""
    try:
        js = kube.get(JOBSET, namespace, name)
    except ApiError as exc:
        if exc.status == 404:  # the API itself is not served
            return None
        raise
    if js is None:
        return None
    status = js.get("status") or {}
    conds = {c["type"]: c for c in status.get("conditions") or []}
    done = conds.get("Completed", {}).get("status") == "True"
    failed = conds.get("Failed", {}).get("status") == "True"
    if not (done or failed):
        return JobObservation("active")
    attempt = str(status.get("restarts") or 0)
    pods = [
        p
        for p in kube.list(POD, namespace, f"{jobset.JOBSET_NAME}={name}")
        if (p["metadata"].get("labels") or {}).get(jobset.RESTART_ATTEMPT, "0") == attempt
    ]

    def index(pod: dict[str, Any]) -> str:
        return str((pod["metadata"].get("annotations") or {}).get(jobset.COMPLETION_INDEX, ""))

    message = next((_terminated(p).get("message") for p in pods if index(p) == "0"), None)
    if not failed:
        return JobObservation("succeeded", message or None)
    cond = conds["Failed"]
    why = [f"{cond.get('reason', '')}: {cond.get('message', '')}".strip(": ")]
    for pod in sorted(pods, key=index):
        end = _terminated(pod)
        if end and end.get("exitCode", 0) != 0:
            said = _said(str(end.get("message") or ""))
            why.append(f"node {index(pod)} exited {end['exitCode']}: {said}".rstrip(": "))
    return JobObservation("failed", message or None, "; ".join(w for w in why if w))


def observe_job(kube: Kube, namespace: str, name: str) -> JobObservation | None:
    """The Job's state and, when it finished, its pod's termination message (None: no Job)."""
    job = kube.get(JOB, namespace, name)
    if job is None:
        return None
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
