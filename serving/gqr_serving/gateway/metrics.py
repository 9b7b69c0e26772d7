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
        self._traffic_metrics(self.registry)
        self._request_path_metrics(self.registry)
        self._log_store_metrics(self.registry)
        self.key_reloads = Counter(
            "gqr_gateway_key_reloads",
            "Signing key changes picked up (ok) or refused (error)",
            ["result"],
            registry=self.registry,
        )
        self.clicks_refused = Counter(
            "gqr_gateway_clicks_refused",
            "Feedback refused by impression id check: unknown_impression, wrong_user, "
            "user_required, impression_expired",
            ["reason"],
            registry=self.registry,
        )
        self.routing_reloads = Counter(
            "gqr_gateway_routing_reloads", "Routing reloads", ["result"], registry=self.registry
        )
        self.blocklist_reloads = Counter(
            "gqr_gateway_blocklist_reloads",
            "Blocklist file reloads",
            ["result"],
            registry=self.registry,
        )
        self.shown: dict[tuple[str, str], int] = {}
        self.clicked: dict[tuple[str, str], int] = {}
        self.registry.register(_CTRCollector(self))

    def _traffic_metrics(self, r: CollectorRegistry) -> None:
        """HTTP requests, their latency and stages, impressions and clicks."""
        self.requests = Counter(
            "gqr_gateway_requests", "HTTP requests", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "gqr_gateway_request_seconds",
            "Request latency",
            ["endpoint"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "gqr_gateway_stage_seconds",
            "Latency per pipeline stage",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.impressions = Counter(
            "gqr_gateway_impressions", "Impressions served", ["arm", "model"], registry=r
        )
        self.clicks = Counter(
            "gqr_gateway_clicks", "Clicks recorded (first time)", ["arm", "model"], registry=r
        )
        self.rate_limited = Counter(
            "gqr_gateway_rate_limited",
            "Requests refused 429 by a rate limit (key: the user or the address bucket)",
            ["endpoint", "key"],
            registry=r,
        )
        self.invalid_clicks = Counter(
            "gqr_gateway_invalid_clicks",
            "Clicks recorded as invalid traffic at feedback (logged, never counted in stats)",
            ["reason"],
            registry=r,
        )

    def _request_path_metrics(self, r: CollectorRegistry) -> None:
        """How each part of the request path answered: LLM, COR, CTR predictor, filters."""
        self.backend_errors = Counter(
            "gqr_gateway_backend_errors", "LLM backend failures", ["arm", "reason"], registry=r
        )
        self.fallbacks = Counter(
            "gqr_gateway_fallbacks",
            "Answers served from COR alone",
            ["arm", "reason"],
            registry=r,
        )
        self.cor = Counter("gqr_gateway_cor", "COR retrievals by outcome", ["status"], registry=r)
        self.cor_path = Counter(
            "gqr_gateway_cor_path",
            "How COR answered: memory (no ANN needed), cache (ANN result cached), "
            "ann (index searched in budget), none (ANN needed, not had in budget)",
            ["path"],
            registry=r,
        )
        self.cor_inflight = Gauge(
            "gqr_gateway_cor_inflight", "COR index searches running", registry=r
        )
        self.ctr_errors = Counter(
            "gqr_gateway_ctr_errors", "Reranks skipped (CTR predictor failed)", registry=r
        )
        self.problems = Counter(
            "gqr_gateway_output_problems",
            "Parser/filter problems; the output filter's reason codes (url, email, phone, card, "
            "iban, blocklist_term, blocklist_regex) count the queries and aux texts it dropped",
            ["code"],
            registry=r,
        )
        self.unavailable = Counter(
            "gqr_gateway_unavailable", "503s: no LLM and no COR answer", registry=r
        )
        self.breaker_open = Gauge(
            "gqr_gateway_breaker_open",
            "1 while an arm's circuit breaker is open",
            ["arm"],
            registry=r,
        )

    def _log_store_metrics(self, r: CollectorRegistry) -> None:
        """The impression sink's buffers and failed log store writes."""
        self.sink_pending = Gauge(
            "gqr_gateway_sink_pending", "Impressions waiting for the log store", registry=r
        )
        self.sink_spooled = Gauge(
            "gqr_gateway_sink_spooled_bytes", "Impressions buffered on local disk", registry=r
        )
        self.sink_lag = Gauge(
            "gqr_gateway_sink_lag_seconds", "Age of the oldest unwritten impression", registry=r
        )
        self.sink_dropped = Counter(
            "gqr_gateway_sink_dropped",
            "Impressions dropped (memory and disk buffers full)",
            registry=r,
        )
        self.sink_spills = Counter(
            "gqr_gateway_sink_spilled", "Impressions spilled to disk (backpressure)", registry=r
        )
        self.log_errors = Counter(
            "gqr_gateway_log_write_errors", "Failed log store writes", ["kind"], registry=r
        )
        self.impression_acks = Counter(
            "gqr_gateway_impression_acks",
            "ack mode: where each impression was durable before its answer: store (the log "
            "store), spool (local spool, fsync'd: the store was late or failed), failed (503)",
            ["result"],
            registry=r,
        )
        self.impression_fallbacks = Counter(
            "gqr_gateway_impression_ack_fallbacks",
            "ack mode: impressions spooled instead, by why: timeout, error, overload",
            ["reason"],
            registry=r,
        )
        self.impression_ack_seconds = Histogram(
            "gqr_gateway_impression_ack_seconds",
            "ack mode: time from a request's impression record to it being durable",
            ["result"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.group_commit_size = Histogram(
            "gqr_gateway_group_commit_requests",
            "Requests whose records one group commit made durable",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.group_commit_seconds = Histogram(
            "gqr_gateway_group_commit_seconds",
            "Duration of one group commit (write and fsync)",
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.retention_deleted = Counter(
            "gqr_gateway_log_retention_deleted",
            "Log store segments deleted by retention (older than --log-retention-days)",
            ["kind"],
            registry=r,
        )
        self.retention_errors = Counter(
            "gqr_gateway_log_retention_errors", "Retention runs that failed", registry=r
        )
        self.compacted_days = Counter(
            "gqr_gateway_log_compacted_days",
            "Log store day folders compacted into Parquet (--log-compact-interval-s)",
            registry=r,
        )
        self.compact_errors = Counter(
            "gqr_gateway_log_compact_errors", "Compaction runs that failed", registry=r
        )

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
