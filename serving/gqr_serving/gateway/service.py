"""``Gateway``: the components of one replica wired from settings, and their lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gqr_contracts.base import utcnow
from gqr_contracts.routing import ArmConfig, BackendSpec, RoutingConfig
from gqr_serving.cor import CORService
from gqr_serving.gateway.cor_budget import BudgetedCOR, CORSource
from gqr_serving.gateway.ctr import CTRClient
from gqr_serving.gateway.ids import KeyFiles, Keys, load_secret
from gqr_serving.gateway.metrics import GatewayMetrics
from gqr_serving.gateway.output_guard import OutputGuard
from gqr_serving.gateway.pipeline import Pipeline
from gqr_serving.gateway.ratelimit import AbuseLimits, TokenBuckets, parse_networks
from gqr_serving.gateway.router import BackendFactory, Router
from gqr_serving.gateway.schemas import RecommendRequest, RecommendResponse
from gqr_serving.gateway.settings import GatewaySettings
from gqr_serving.gateway.sink import (
    ClickWriter,
    GroupCommit,
    ImpressionSink,
    Overloaded,
    WriterFactory,
    log_writer_factory,
)
from gqr_serving.gateway.stats import LogStats
from gqr_serving.logstore.compact import compact
from gqr_serving.logstore.retention import prune
from gqr_serving.prompt import TaskPreset, list_presets, load_preset
from gqr_serving.records import ImpressionRecord

log = logging.getLogger("gqr_serving.gateway")
COR_REFRESH_S = 60.0


@dataclass
class GatewayParts:
    """Components to use instead of the ones settings describe (tests, benchmarks)."""

    backend_factory: BackendFactory | None = None
    cor_source: CORSource | None = None
    writer_factory: WriterFactory | None = None
    clock: Callable[[], float] | None = None
    """Monotonic seconds for the rate limits (tests move time by hand)."""


class Gateway:
    """Everything one replica holds; the app's routes call into it."""

    def __init__(self, settings: GatewaySettings, parts: GatewayParts) -> None:
        self.settings = s = settings
        self.metrics = GatewayMetrics()
        self.key_files = (
            KeyFiles(s.secret_key_file, s.verify_key_files) if s.secret_key_file else None
        )
        self._key_material = (
            self.key_files.load() if self.key_files else (load_secret(None, s.log_root), [])
        )
        self.keys = Keys(*self._key_material, ttl_s=s.impression_ttl_s)
        self.admin_token = _read_token(s.admin_token_file)
        self.guard = OutputGuard(s.pii_filters, s.blocklist_file, poll_s=s.routing_poll_s)
        self.presets: dict[str, TaskPreset] = {
            name: load_preset(name, extra_dirs=s.preset_dirs)
            for name in list_presets(extra_dirs=s.preset_dirs)
        }
        if s.routing_file is not None:
            self.router = Router.from_file(
                s.routing_file, factory=parts.backend_factory, poll_s=s.routing_poll_s
            )
        else:
            self.router = Router(_single_arm(s), factory=parts.backend_factory)
        self._cor_service: CORService | None = None
        source = parts.cor_source
        if source is None and s.cor_root is not None:
            source = self._cor_service = _cor_service(s)
        self.cor = BudgetedCOR(
            source, k=s.cor_k, timeout_s=s.cor_timeout_s, max_inflight=s.cor_max_inflight
        )
        cor = self.cor
        self.metrics.cor_inflight.set_function(lambda: cor.inflight)
        self.ctr = (
            CTRClient(s.ctr_url, s.ctr_model, timeout_s=s.ctr_timeout_s) if s.ctr_url else None
        )
        self.pipeline = Pipeline(
            self.cor,
            self.metrics,
            ctr=self.ctr,
            rerank=s.rerank,
            ctr_timeout_s=s.ctr_timeout_s,
            rerank_mode=s.rerank_mode,
            guard=self.guard,
        )
        factory = parts.writer_factory or log_writer_factory(s.log_root)
        spool = s.spool_dir or Path(tempfile.gettempdir()) / "gqr-gateway-spool"
        m = self.metrics
        self.sink = ImpressionSink(
            factory,
            spool,
            max_pending=s.max_pending,
            spool_max_bytes=s.spool_max_bytes,
            on_error=lambda: m.log_errors.labels("impression").inc(),
            on_spill=m.sink_spills.inc,
            on_drop=m.sink_dropped.inc,
        )
        m.sink_gauges(lambda: self.sink.pending, lambda: self.sink.spooled_bytes, self.sink.lag_s)
        self.acked = _group_commit(s, factory, m) if s.impression_durability == "ack" else None
        self.clicks = ClickWriter(factory, timeout_s=s.click_timeout_s)
        self.invalid_policy = policy = s.invalid_traffic_policy()
        self.stats = LogStats(
            s.log_root,
            refresh_s=s.stats_refresh_s,
            max_window_s=s.stats_max_window_s,
            policy=policy,
        )
        self.limits = AbuseLimits(s, clock=parts.clock or time.monotonic)
        self.proxies = parse_networks(s.trusted_proxies)
        # The user_click_rate rule: a bucket of clicks per user (per replica).
        self.user_clicks = TokenBuckets(
            policy.user_clicks_per_h / 3600.0, policy.user_clicks_per_h, max_keys=s.rate_max_keys
        )
        self.known_paths: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self.sink.start()
        if self.acked is not None:
            self.acked.start()
        if self.settings.log_retention_days:
            self._tasks.append(asyncio.create_task(self._retention_loop()))
        if self.settings.log_compact_interval_s:
            self._tasks.append(asyncio.create_task(self._compact_loop()))
        if self._cor_service is not None:
            await self._refresh_cor()
            self._tasks.append(asyncio.create_task(self._cor_loop()))
        m = self.metrics
        if self.router.path is not None:
            watch = self.router.watch(lambda r: m.routing_reloads.labels(r).inc())
            self._tasks.append(asyncio.create_task(watch))
        if self.key_files is not None:
            self._tasks.append(asyncio.create_task(self._key_loop()))
        if self.guard.path is not None:
            watch = self.guard.watch(lambda r: m.blocklist_reloads.labels(r).inc())
            self._tasks.append(asyncio.create_task(watch))
        self._started = True

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.acked is not None:
            await asyncio.to_thread(self.acked.close)
        await asyncio.to_thread(self.sink.close)
        await asyncio.to_thread(self.clicks.close)
        await self.router.aclose()
        if self.ctr is not None:
            await self.ctr.aclose()
        self.cor.close()
        if self._cor_service is not None and self._cor_service.index is not None:
            self._cor_service.index.close()

    def not_ready(self) -> str | None:
        if not self._started:
            return "starting"
        if not self.router.arms:
            return "no routing table"
        return None

    async def reload_routing(self) -> None:
        try:
            self.router.reload()  # closes the retired backends after a grace
        except ValueError:
            self.metrics.routing_reloads.labels("error").inc()
            raise
        self.metrics.routing_reloads.labels("ok").inc()

    async def _refresh_cor(self) -> None:
        assert self._cor_service is not None
        try:
            if await asyncio.to_thread(self._cor_service.refresh):
                log.info("COR version %s now serves", self._cor_service.version)
                # Warm the Milvus connection and encoder so a user's first call is not slow.
                await asyncio.to_thread(self._cor_service.retrieve, "warm up")
        except Exception as exc:  # keep serving the previous version (or none)
            log.error("COR refresh failed: %s: %s", type(exc).__name__, exc)

    def reload_keys(self) -> bool:
        """Re-read the key files; True when the keys changed. Bad files keep the keys."""
        assert self.key_files is not None
        try:
            material = self.key_files.load()
            if material == self._key_material:
                return False
            keys = Keys(*material, ttl_s=self.settings.impression_ttl_s)
        except (OSError, ValueError) as exc:
            self.metrics.key_reloads.labels("error").inc()
            log.error("signing keys not reloaded (the current ones stay): %s", exc)
            return False
        self.keys, self._key_material = keys, material
        self.metrics.key_reloads.labels("ok").inc()
        log.info("signing keys reloaded: 1 signing, %d verify-only", keys.verify_count)
        return True

    async def _key_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.key_reload_s)
            await asyncio.to_thread(self.reload_keys)

    async def _retention_loop(self) -> None:
        """Prune the log store now, then every --log-retention-interval-s (logs.retention)."""
        s, m = self.settings, self.metrics
        while True:
            try:
                result = await asyncio.to_thread(prune, s.log_root, s.log_retention_days)
                for kind, n in result.deleted_files.items():
                    m.retention_deleted.labels(kind).inc(n)
            except Exception as exc:  # the store may be down: try again next time
                m.retention_errors.inc()
                log.error("log retention failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(s.log_retention_interval_s)

    async def _compact_loop(self) -> None:
        """Compact the closed day folders now, then every --log-compact-interval-s."""
        s, m = self.settings, self.metrics
        while True:
            try:
                result = await asyncio.to_thread(compact, s.log_root)
                m.compacted_days.inc(len(result.compacted))
            except Exception as exc:  # the store may be down: try again next time
                m.compact_errors.inc()
                log.error("log compaction failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(s.log_compact_interval_s)

    async def _cor_loop(self) -> None:
        while True:
            await asyncio.sleep(COR_REFRESH_S)
            await self._refresh_cor()

    # -- requests ----------------------------------------------------------------------

    async def recommend(
        self, req: RecommendRequest, preset: TaskPreset, n: int
    ) -> RecommendResponse:
        start = time.monotonic()
        key = req.user_key or req.session_id
        arm = self.router.route(key)
        user_hash = self.keys.hash_user(req.user_key) if req.user_key else None
        out = await self.pipeline.run(
            req, preset, n, arm, user_hash, start + self.settings.request_budget_s
        )
        now = utcnow()
        version = arm.config.model_version
        iid = self.keys.new_impression_id(
            int(now.timestamp() * 1000), len(out.queries), arm.name, version, bound_to=key
        )
        await self._log_impression(
            ImpressionRecord(
                impression_id=iid,
                ts=now,
                deployment=self.settings.deployment,
                task=preset.name,
                arm=arm.name,
                model_version=version,
                session_id=self.keys.hash_user(req.session_id) if req.session_id else "",
                user_key=user_hash or "",
                query=req.query,
                side_info=out.side_info,
                aux_texts=out.aux_texts,
                queries=out.queries,
                fallback=out.fallback,
            )
        )
        self.metrics.count_impression(arm.name, version)
        self.metrics.stage.labels("total").observe(time.monotonic() - start)
        return RecommendResponse(
            impression_id=iid,
            task=preset.name,
            queries=out.queries,
            aux_texts=out.aux_texts,
            arm=arm.name if self.settings.expose_arm else None,
            model_version=version if self.settings.expose_arm else None,
            fallback=out.fallback,
            fallback_reason=out.fallback_reason if out.fallback else None,
            reranked=out.reranked,
        )

    async def _log_impression(self, record: ImpressionRecord) -> None:
        """async: queue it. ack: return once it is durable in the store, else in the spool;
        :class:`ImpressionNotLogged` when neither took it."""
        if self.acked is None:
            self.sink.submit(record)
            return
        m, start = self.metrics, time.monotonic()
        try:
            await self.acked.write((record,))
            result = "store"
        except OSError as exc:  # TimeoutError and Overloaded are OSErrors too
            reason = (
                "overload"
                if isinstance(exc, Overloaded)
                else "timeout"
                if isinstance(exc, TimeoutError)
                else "error"
            )
            m.impression_fallbacks.labels(reason).inc()
            spooled = await asyncio.to_thread(self.sink.spool_durably, record)
            result = "spool" if spooled else "failed"
        m.impression_acks.labels(result).inc()
        m.impression_ack_seconds.labels(result).observe(time.monotonic() - start)
        if result == "failed":
            raise ImpressionNotLogged(
                "the impression could not be made durable (log store and spool both refused "
                "it); nothing was served"
            )


class ImpressionNotLogged(Exception):
    """ack mode: neither the log store nor the spool took an impression (the answer is 503)."""


def _group_commit(s: GatewaySettings, factory: WriterFactory, m: GatewayMetrics) -> GroupCommit:
    def committed(requests: int, seconds: float) -> None:
        m.group_commit_size.observe(requests)
        m.group_commit_seconds.observe(seconds)

    return GroupCommit(
        factory, "imp-ack", timeout_s=s.impression_ack_timeout_s, on_commit=committed
    )


def _read_token(path: Path | None) -> str | None:
    if path is None:
        return None
    token = path.read_text().strip()
    if len(token) < 16:
        raise ValueError(f"{path}: the admin token must be at least 16 characters")
    return token


def _single_arm(s: GatewaySettings) -> RoutingConfig:
    spec = BackendSpec(kind=s.llm_kind, url=s.llm_url, model=s.llm_model)
    arm = ArmConfig(name="stable", weight=1, model_version=s.model_version, backend=spec)
    return RoutingConfig(arms=(arm,))


def _cor_service(s: GatewaySettings) -> CORService:
    from gqr_serving.cor import MilvusQueryIndex, RetrievalConfig, load_encoder

    assert s.cor_root is not None
    config = RetrievalConfig(k=s.cor_k)
    if not s.milvus_uri:
        return CORService(s.cor_root, config=config)  # direct successors only: nothing to cache
    token = s.milvus_token_file.read_text().strip() if s.milvus_token_file else ""
    return CORService(
        s.cor_root,
        index=MilvusQueryIndex(
            s.milvus_uri,
            token=token,
            prefix=s.milvus_prefix,
            partitions=s.cor_partitions,
            probe=s.cor_probe,
        ),
        encoder=load_encoder(s.cor_encoder, runtime="numpy"),
        config=config,
        cache_size=s.cor_cache_size,
        warm_on_switch=s.cor_warm,
    )
