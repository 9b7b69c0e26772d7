"""Prometheus metrics of one gateway (own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _CTRCollector(Collector):
    """CTR per arm and model version since this process started (impressions it served,
    clicks it recorded); the cross-replica truth is ``/v1/stats``."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[GaugeMetricFamily]:
        fam = GaugeMetricFamily(
            "gqr_gateway_ctr", "Clicks per impression, this replica", labels=["arm", "model"]
        )
        shown = self.metrics.shown
        for key, imps in shown.items():
            if imps:
                fam.add_metric(list(key), self.metrics.clicked.get(key, 0) / imps)
        yield fam


class GatewayMetrics:
    """Every metric the gateway exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._traffic_metrics()
        self._request_path_metrics()
        self._log_store_metrics()
        self.key_reloads = self._counter(
            "gqr_gateway_key_reloads",
            "Signing key changes picked up (ok) or refused (error)",
            "result",
        )
        self.clicks_refused = self._counter(
            "gqr_gateway_clicks_refused",
            "Feedback refused by impression id check: unknown_impression, wrong_user, "
            "user_required, impression_expired",
            "reason",
        )
        self.routing_reloads = self._counter(
            "gqr_gateway_routing_reloads", "Routing reloads", "result"
        )
        self.blocklist_reloads = self._counter(
            "gqr_gateway_blocklist_reloads", "Blocklist file reloads", "result"
        )
        self.shown: dict[tuple[str, str], int] = {}
        self.clicked: dict[tuple[str, str], int] = {}
        self.registry.register(_CTRCollector(self))

    def _traffic_metrics(self) -> None:
        """HTTP requests, their latency and stages, impressions and clicks."""
        self.requests = self._counter("gqr_gateway_requests", "HTTP requests", "endpoint", "status")
        self.latency = self._histogram("gqr_gateway_request_seconds", "Request latency", "endpoint")
        self.stage = self._histogram(
            "gqr_gateway_stage_seconds", "Latency per pipeline stage", "stage"
        )
        self.impressions = self._counter(
            "gqr_gateway_impressions", "Impressions served", "arm", "model"
        )
        self.clicks = self._counter(
            "gqr_gateway_clicks", "Clicks recorded (first time)", "arm", "model"
        )
        self.rate_limited = self._counter(
            "gqr_gateway_rate_limited",
            "Requests refused 429 by a rate limit (key: the user or the address bucket)",
            "endpoint",
            "key",
        )
        self.invalid_clicks = self._counter(
            "gqr_gateway_invalid_clicks",
            "Clicks recorded as invalid traffic at feedback (logged, never counted in stats)",
            "reason",
        )

    def _request_path_metrics(self) -> None:
        """How each part of the request path answered: LLM, COR, CTR predictor, filters."""
        self.backend_errors = self._counter(
            "gqr_gateway_backend_errors", "LLM backend failures", "arm", "reason"
        )
        self.fallbacks = self._counter(
            "gqr_gateway_fallbacks", "Answers served from COR alone", "arm", "reason"
        )
        self.cor = self._counter("gqr_gateway_cor", "COR retrievals by outcome", "status")
        self.cor_path = self._counter(
            "gqr_gateway_cor_path",
            "How COR answered: memory (no ANN needed), cache (ANN result cached), "
            "ann (index searched in budget), none (ANN needed, not had in budget)",
            "path",
        )
        self.cor_inflight = self._gauge("gqr_gateway_cor_inflight", "COR index searches running")
        self.ctr_errors = self._counter(
            "gqr_gateway_ctr_errors", "Reranks skipped (CTR predictor failed)"
        )
        self.problems = self._counter(
            "gqr_gateway_output_problems",
            "Parser/filter problems; the output filter's reason codes (url, email, phone, card, "
            "iban, blocklist_term, blocklist_regex) count the queries and aux texts it dropped",
            "code",
        )
        self.unavailable = self._counter(
            "gqr_gateway_unavailable", "503s: no LLM and no COR answer"
        )
        self.breaker_open = self._gauge(
            "gqr_gateway_breaker_open", "1 while an arm's circuit breaker is open", "arm"
        )

    def _log_store_metrics(self) -> None:
        """The impression sink's buffers and failed log store writes."""
        self.sink_pending = self._gauge(
            "gqr_gateway_sink_pending", "Impressions waiting for the log store"
        )
        self.sink_spooled = self._gauge(
            "gqr_gateway_sink_spooled_bytes", "Impressions buffered on local disk"
        )
        self.sink_lag = self._gauge(
            "gqr_gateway_sink_lag_seconds", "Age of the oldest unwritten impression"
        )
        self.sink_dropped = self._counter(
            "gqr_gateway_sink_dropped", "Impressions dropped (memory and disk buffers full)"
        )
        self.sink_spills = self._counter(
            "gqr_gateway_sink_spilled", "Impressions spilled to disk (backpressure)"
        )
        self.log_errors = self._counter(
            "gqr_gateway_log_write_errors", "Failed log store writes", "kind"
        )
        self.impression_acks = self._counter(
            "gqr_gateway_impression_acks",
            "ack mode: where each impression was durable before its answer: store (the log "
            "store), spool (local spool, fsync'd: the store was late or failed), failed (503)",
            "result",
        )
        self.impression_fallbacks = self._counter(
            "gqr_gateway_impression_ack_fallbacks",
            "ack mode: impressions spooled instead, by why: timeout, error, overload",
            "reason",
        )
        self.impression_ack_seconds = self._histogram(
            "gqr_gateway_impression_ack_seconds",
            "ack mode: time from a request's impression record to it being durable",
            "result",
        )
        self.group_commit_size = self._histogram(
            "gqr_gateway_group_commit_requests",
            "Requests whose records one group commit made durable",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        self.group_commit_seconds = self._histogram(
            "gqr_gateway_group_commit_seconds", "Duration of one group commit (write and fsync)"
        )
        self.retention_deleted = self._counter(
            "gqr_gateway_log_retention_deleted",
            "Log store segments deleted by retention (older than --log-retention-days)",
            "kind",
        )
        self.retention_errors = self._counter(
            "gqr_gateway_log_retention_errors", "Retention runs that failed"
        )
        self.compacted_days = self._counter(
            "gqr_gateway_log_compacted_days",
            "Log store day folders compacted into Parquet (--log-compact-interval-s)",
        )
        self.compact_errors = self._counter(
            "gqr_gateway_log_compact_errors", "Compaction runs that failed"
        )

    def _counter(self, name: str, doc: str, *labels: str) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)

    def _gauge(self, name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(name, doc, labels, registry=self.registry)

    def _histogram(
        self, name: str, doc: str, *labels: str, buckets: tuple[float, ...] = _STAGE_BUCKETS
    ) -> Histogram:
        return Histogram(name, doc, labels, buckets=buckets, registry=self.registry)

    def count_impression(self, arm: str, model: str) -> None:
        self.impressions.labels(arm, model).inc()
        self.shown[(arm, model)] = self.shown.get((arm, model), 0) + 1

    def count_click(self, arm: str, model: str, n: int = 1) -> None:
        self.clicks.labels(arm, model).inc(n)
        self.clicked[(arm, model)] = self.clicked.get((arm, model), 0) + n

    def sink_gauges(
        self, pending: Callable[[], float], spooled: Callable[[], float], lag: Callable[[], float]
    ) -> None:
        self.sink_pending.set_function(pending)
        self.sink_spooled.set_function(spooled)
        self.sink_lag.set_function(lag)
