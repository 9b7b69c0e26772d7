"""Operator metrics on /metrics: reconciles, errors, durations, API requests, and the state of
each GQRDeployment (phase, pipeline step, canary weight, the last analysis's counts per arm,
the last decision), labelled by namespace and name."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter("gqr_operator_reconciles_total", "Reconcile passes, by trigger.", ["trigger"])
RECONCILE_ERRORS = Counter(
    "gqr_operator_reconcile_errors_total", "Reconcile passes that failed, by reason.", ["reason"]
)
RECONCILE_SECONDS = Histogram(
    "gqr_operator_reconcile_seconds",
    "Duration of one reconcile pass.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
API_REQUESTS = Counter("gqr_operator_api_requests_total", "Requests sent to the apiserver.")
CHILD_WRITES = Counter(
    "gqr_operator_child_writes_total", "Children created, updated or pruned.", ["action"]
)
CANARY_WEIGHT = Gauge(
    "gqr_operator_canary_weight", "Current canary weight (percent).", ["namespace", "name"]
)


def _deployment_gauge(name: str, doc: str, *labels: str) -> Gauge:
    """A per-GQRDeployment gauge: labelled by its namespace and name, then ``labels``."""
    return Gauge(name, doc, ["namespace", "name", *labels])


_LAST_ANALYSIS = "of each arm in the current canary step's last analysis (from /v1/stats)."
PHASE = _deployment_gauge(
    "gqr_deployment_phase",
    "1 for the GQRDeployment's current .status.phase (Ready, Canary, Training, ...).",
    "phase",
)
PIPELINE_STEP = _deployment_gauge(
    "gqr_deployment_pipeline_step",
    "1 for the step of the running pipeline run (absent when no run is running).",
    "step",
)
PIPELINE_FAILURES = _deployment_gauge(
    "gqr_deployment_pipeline_consecutive_failures",
    "Pipeline runs failed in a row (scheduled runs back off, then suspend).",
)
ARM_IMPRESSIONS = _deployment_gauge(
    "gqr_deployment_arm_impressions", f"Impressions {_LAST_ANALYSIS}", "arm"
)
ARM_CLICKS = _deployment_gauge("gqr_deployment_arm_clicks", f"Clicks {_LAST_ANALYSIS}", "arm")
ARM_CTR = _deployment_gauge("gqr_deployment_arm_ctr", f"CTR {_LAST_ANALYSIS}", "arm")
LAST_DECISION = _deployment_gauge(
    "gqr_deployment_last_decision",
    "1 for the last canary analysis decision (pass, fail, wait, inconclusive).",
    "decision",
)
_SERIES: dict[tuple[str, str], list[tuple[Gauge, tuple[str, ...]]]] = {}


def _set(gauge: Gauge, labels: tuple[str, ...], value: float) -> None:
    gauge.labels(*labels).set(value)
    _SERIES.setdefault((labels[0], labels[1]), []).append((gauge, labels))


def observe(namespace: str, name: str, status: Mapping[str, Any]) -> None:
    """Set the per-GQRDeployment gauges from its status after a pass (only its own series are
    replaced, so a phase or step it left is gone, not stuck at 1)."""
    forget(namespace, name)
    me = (namespace, name)
    _set(PHASE, (*me, str(status.get("phase") or "Unknown")), 1)
    pipeline = status.get("pipeline") or {}
    if pipeline.get("phase") == "Running" and pipeline.get("currentStep"):
        _set(PIPELINE_STEP, (*me, str(pipeline["currentStep"])), 1)
    _set(PIPELINE_FAILURES, me, float(pipeline.get("consecutiveFailures") or 0))
    rollout = status.get("rollout") or {}
    _set(CANARY_WEIGHT, me, float(rollout.get("weight") or 0))
    last = rollout.get("lastAnalysis") or {}
    for arm in ("stable", "canary"):
        counts = last.get(arm) or {}
        if "impressions" in counts:
            _set(ARM_IMPRESSIONS, (*me, arm), counts["impressions"])
            _set(ARM_CLICKS, (*me, arm), counts.get("clicks", 0))
        if last.get(f"{arm}Ctr") is not None:
            _set(ARM_CTR, (*me, arm), last[f"{arm}Ctr"])
    if last.get("decision"):
        _set(LAST_DECISION, (*me, str(last["decision"])), 1)


def forget(namespace: str, name: str) -> None:
    """Drop every per-GQRDeployment series of ``namespace/name`` (a deleted one, or before
    :func:`observe` sets them again)."""
    for gauge, labels in _SERIES.pop((namespace, name), []):
        with contextlib.suppress(KeyError):  # set twice in one pass: removed already
            gauge.remove(*labels)


def serve(port: int) -> None:
    """Starts the /metrics endpoint in a daemon thread (port 0 disables it)."""
    if port:
        start_http_server(port)
