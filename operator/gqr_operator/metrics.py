"""Operator metrics on /metrics: reconciles, errors, durations, API requests, rollout state."""

from __future__ import annotations

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


def serve(port: int) -> None:
    """Starts the /metrics endpoint in a daemon thread (port 0 disables it)."""
    if port:
        start_http_server(port)
