"""The FastAPI app: routes, error mapping and lifecycle. The work happens in ``Gateway``."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import Depends, FastAPI, Header, Query
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from gqr_contracts.base import utcnow
from gqr_contracts.stats import ArmStats, StatsAnswer
from gqr_serving.gateway.ids import ImpressionRef, Refused
from gqr_serving.gateway.limits import BodyLimit, excerpt
from gqr_serving.gateway.pipeline import InputError, Unavailable, check_side_info
from gqr_serving.gateway.ratelimit import client_address, feedback_user
from gqr_serving.gateway.schemas import (
    ErrorBody,
    FeedbackRequest,
    FeedbackResponse,
    RecommendRequest,
    RecommendResponse,
)
from gqr_serving.gateway.service import Gateway, GatewayParts, ImpressionNotLogged
from gqr_serving.gateway.settings import GatewaySettings
from gqr_serving.gateway.stats import parse_since, parse_window
from gqr_serving.invalid import click_verdict, clicks_all_positions
from gqr_serving.records import ClickRecord

Scope = MutableMapping[str, Any]
_REFUSED_STATUS = {
    "unknown_impression": 404,
    "wrong_user": 403,
    "user_required": 403,
    "impression_expired": 410,
}
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def _invalid(loc: tuple[str | int, ...], msg: str, value: Any = None) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": value}])


def _error(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse(ErrorBody(error=error, detail=detail).model_dump(), status_code=status)


class _AsciiJSON(JSONResponse):
    """Escapes non-ASCII: a 422 may echo input holding a lone surrogate (valid JSON, not
    encodable as UTF-8), which the default renderer turns into a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode()


class _Observe:
    """Counts requests and latency per route (a plain ASGI wrapper: no per-request task)."""

    def __init__(self, app: ASGIApp, gw: Gateway) -> None:
        self.app, self.gw = app, gw

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.monotonic(), [500]

        async def _send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            path = scope.get("path", "")
            endpoint = path if path in self.gw.known_paths else "other"
            self.gw.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.gw.metrics.latency.labels(endpoint).observe(time.monotonic() - start)


def create_app(settings: GatewaySettings, parts: GatewayParts | None = None) -> FastAPI:
    """The gateway app; ``parts`` replaces components (tests, benchmarks).

    With ``settings.internal_port``, ``/v1/stats``, ``/metrics`` and ``/admin`` are not on this
    app but on ``app.state.internal``, served on that port (one the NetworkPolicy opens to the
    operator and monitoring only); the two share one :class:`Gateway`, started by this app.
    """
    gw = Gateway(settings, parts or GatewayParts())
    app = _new_app(gw, lifespan=_lifespan(gw))
    _add_traffic_routes(app, gw)
    internal = _new_app(gw) if settings.internal_port else app
    apps = [app] if internal is app else [app, internal]
    _add_stats_route(internal, gw)
    for a in apps:
        _add_health_routes(a, gw, metrics=a is internal)
    _add_admin_routes(internal, gw)
    app.state.internal = internal if internal is not app else None
    gw.known_paths = {r.path for a in apps for r in a.routes if hasattr(r, "path")}
    for a in apps:
        a.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
        a.add_middleware(_Observe, gw=gw)
    return app


def _new_app(gw: Gateway, **kw: Any) -> FastAPI:
    app = FastAPI(
        title="GQR gateway",
        version="1",
        summary="Generative query recommendation: one LLM, one prompt, N queries.",
        **kw,
    )
    app.state.gateway = gw
    _add_error_handlers(app)
    return app


def _rate_limited(gw: Gateway, endpoint: str, raw_user: str | None, request: Request) -> Any:
    """A 429 answer when a bucket of ``endpoint`` is empty for this user or address, else None
    (and a token is taken from each)."""
    user = gw.keys.hash_user(raw_user) if raw_user else None
    forwarded = request.headers.get("x-forwarded-for") if gw.proxies else None
    addr = client_address(request.client.host if request.client else None, forwarded, gw.proxies)
    limited = gw.limits.check(endpoint, user, addr)
    if limited is None:
        return None
    gw.metrics.rate_limited.labels(endpoint, limited.key).inc()
    answer = _error(429, "rate_limited", limited.detail(f"/v1/{endpoint}"))
    answer.headers["Retry-After"] = str(limited.retry_after_s)
    return answer


def _click_verdict(
    gw: Gateway, ref: ImpressionRef, iid: str, positions: list[int], user: str | None
) -> str | None:
    """The invalid-traffic verdict recorded on this request's new clicks (gqr_serving.invalid):
    too fast after the impression, every position clicked (as far as this replica knows), or
    past the user's hourly clicks."""
    policy = gw.invalid_policy
    reason = click_verdict(utcnow().timestamp() * 1000 - ref.ts_ms, policy)
    known = [p for p in range(ref.n) if p in positions or gw.clicks.is_known(iid, p)]
    if reason is None and clicks_all_positions(known, ref.n, policy):
        reason = "all_positions"
    if user is not None and gw.user_clicks.enabled:
        key, now = gw.keys.hash_user(user), gw.limits.clock()
        for _ in positions:  # one token a click; a click past the budget is flagged
            if gw.user_clicks.wait(key, now) > 0:
                reason = reason or "user_click_rate"
                break
            gw.user_clicks.take(key, now)
    return reason


def _lifespan(gw: Gateway) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    return lifespan


def _add_error_handlers(app: FastAPI) -> None:
    """Validation errors as 422 (ASCII-safe), HTTP errors as :class:`ErrorBody`."""

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{**e, "input": excerpt(e.get("input"))} for e in exc.errors()]
        return _AsciiJSON({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # FastAPI answers 400 to a body that is not UTF-8; the API promises 422.
            detail = [
                {
                    "type": "json_invalid",
                    "loc": ["body"],
                    "input": None,
                    "msg": "the body is not valid UTF-8 JSON",
                }
            ]
            return JSONResponse({"detail": detail}, status_code=422)
        error = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(exc.status_code)
        return _error(exc.status_code, error or "http_error", str(exc.detail))


def _add_traffic_routes(app: FastAPI, gw: Gateway) -> None:
    """What a search front end calls: ``/v1/recommend`` and ``/v1/feedback``."""
    _add_recommend_route(app, gw)
    _add_feedback_route(app, gw)


TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": "The body is over --max-body-bytes (body_too_large)"}
}
"""Every route that reads a body answers 413 before parsing one over the limit (limits.py)."""


def _add_recommend_route(app: FastAPI, gw: Gateway) -> None:
    @app.post(
        "/v1/recommend",
        response_model=RecommendResponse,
        responses={
            **TOO_LARGE,
            429: {"model": ErrorBody, "description": "Rate limited; see Retry-After"},
            503: {
                "model": ErrorBody,
                "description": "Neither the LLM nor COR answered (unavailable), or, with "
                "--impression-durability ack, its impression could not be made durable "
                "(log_store_unavailable)",
            },
        },
    )
    async def recommend(body: RecommendRequest, request: Request) -> Any:
        """N recommended queries for a user query; the impression is logged."""
        if limited := _rate_limited(gw, "recommend", body.user_key or body.session_id, request):
            return limited
        preset = gw.presets.get(body.task)
        if preset is None:
            raise _invalid(
                ("body", "task"), f"unknown task; known: {sorted(gw.presets)}", body.task
            )
        try:
            n = preset.resolve_num_queries(body.num_queries)
            check_side_info(preset, body)
            return await gw.recommend(body, preset, n)
        except InputError as exc:
            raise _invalid(("body", exc.field), str(exc)) from None
        except ValueError as exc:
            raise _invalid(("body", "num_queries"), str(exc), body.num_queries) from None
        except Unavailable as exc:
            return _error(503, "unavailable", str(exc))
        except ImpressionNotLogged as exc:
            gw.metrics.log_errors.labels("impression").inc()
            return _error(503, "log_store_unavailable", str(exc))


def _add_feedback_route(app: FastAPI, gw: Gateway) -> None:
    @app.post(
        "/v1/feedback",
        response_model=FeedbackResponse,
        responses={
            403: {
                "model": ErrorBody,
                "description": "The impression was served to another user_key/session_id, "
                "or to one this request does not send",
            },
            404: {"model": ErrorBody, "description": "Not an impression this deployment made"},
            410: {"model": ErrorBody, "description": "The impression is older than its TTL"},
            **TOO_LARGE,
            429: {"model": ErrorBody, "description": "Rate limited; see Retry-After"},
            503: {"model": ErrorBody, "description": "Clicks not durable in time; retry"},
        },
    )
    async def feedback(body: FeedbackRequest, request: Request) -> Any:
        """Record clicks (2xx only once durable; a repeated click counts once)."""
        try:
            ref = gw.keys.open_impression_id(body.impression_id, body.user_key or body.session_id)
        except Refused as exc:
            gw.metrics.clicks_refused.labels(exc.code).inc()
            return _error(_REFUSED_STATUS[exc.code], exc.code, exc.detail)
        user = feedback_user(body, ref)
        if (limited := _rate_limited(gw, "feedback", user, request)) is not None:
            return limited
        for i, p in enumerate(body.positions):
            if p >= ref.n:
                raise _invalid(("body", "positions", i), f"position {p} >= {ref.n} shown", p)
        positions = sorted(set(body.positions))
        new = [p for p in positions if not gw.clicks.is_known(body.impression_id, p)]
        if new:
            now = utcnow()
            invalid = _click_verdict(gw, ref, body.impression_id, new, user)
            records = [
                ClickRecord(impression_id=body.impression_id, position=p, ts=now, invalid=invalid)
                for p in new
            ]
            try:
                await gw.clicks.write(records)
            except (TimeoutError, OSError) as exc:
                gw.metrics.log_errors.labels("click").inc()
                return _error(
                    503,
                    "log_store_unavailable",
                    f"clicks not recorded ({type(exc).__name__}); retry",
                )
            if invalid is None:
                gw.metrics.count_click(ref.arm, ref.model_version, len(new))
            else:  # acknowledged and logged like any click; never counted
                gw.metrics.invalid_clicks.labels(invalid).inc(len(new))
        dups = [p for p in positions if p not in new]
        return FeedbackResponse(impression_id=body.impression_id, recorded=new, duplicates=dups)


def _add_stats_route(app: FastAPI, gw: Gateway) -> None:
    """``/v1/stats``: what the operator's canary analysis reads."""

    @app.get("/v1/stats", response_model=StatsAnswer)
    async def stats(
        window: str | None = Query(
            None,
            max_length=32,
            description="e.g. 900, 15m, 2h, 7d (default: 1h, or everything kept with since)",
        ),
        since: str | None = Query(
            None,
            max_length=40,
            description="Count only impressions shown at or after this time: ISO 8601 "
            "(2025-03-01T12:00:00Z; UTC without an offset) or Unix seconds. Rounded up to the "
            "next whole minute (the counts' resolution); `start` in the answer says where "
            "counting began. A canary step asks from its start.",
        ),
        fresh: bool = Query(False, description="Re-read the log store now."),
    ) -> StatsAnswer:
        """Impressions and clicks per arm and model version (from the shared log store)."""
        seconds, start_at = _stats_window(gw, window, since)
        start, rows = await asyncio.to_thread(gw.stats.query, seconds, since=start_at, fresh=fresh)
        arms = [
            ArmStats(**vars(r), ctr=r.clicks / r.impressions if r.impressions else 0.0)
            for r in rows
        ]
        return StatsAnswer(
            window_s=seconds, start=start, arms=arms, refreshed_at=gw.stats.refreshed_at
        )


def _stats_window(gw: Gateway, window: str | None, since: str | None) -> tuple[float, float | None]:
    """The window in seconds and the start time of a stats query; 422 naming a bad parameter."""
    try:
        seconds = parse_window(window) if window is not None else None
    except ValueError as exc:
        raise _invalid(("query", "window"), str(exc), window) from None
    if seconds is not None and seconds > gw.stats.max_window_s:
        raise _invalid(
            ("query", "window"), f"window is over the {gw.stats.max_window_s:g}s kept", window
        )
    try:
        start_at = parse_since(since) if since is not None else None
    except ValueError as exc:
        raise _invalid(("query", "since"), str(exc), since) from None
    if seconds is None:
        seconds = gw.stats.max_window_s if start_at is not None else 3600.0
    return seconds, start_at


def _add_health_routes(app: FastAPI, gw: Gateway, *, metrics: bool) -> None:
    """Probes, and with ``metrics`` Prometheus metrics."""

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": ErrorBody}})
    async def readyz() -> Any:
        """Ready to take traffic: routing loaded, log sink running."""
        problem = gw.not_ready()
        if problem:
            return _error(503, "not_ready", problem)
        return {"status": "ready", "arms": sorted(gw.router.arms)}

    if not metrics:
        return

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _admin_guard(gw: Gateway) -> Callable[..., None]:
    """The dependency of admin routes: 403 without a token file, 401 without its token."""

    def admin(authorization: str | None = Header(None)) -> None:
        token = gw.admin_token
        if token is None:
            raise StarletteHTTPException(403, "admin endpoints are off (no --admin-token-file)")
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not authorization or not hmac.compare_digest(given.encode(), token.encode()):
            raise StarletteHTTPException(401, "missing or wrong bearer token")

    return admin


def _add_admin_routes(app: FastAPI, gw: Gateway) -> None:
    """The routing table in force and a reload now, behind the admin bearer token."""
    guard = [Depends(_admin_guard(gw))]
    denied: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
        403: {"model": ErrorBody, "description": "Admin endpoints are off"},
    }

    @app.get("/admin/routing", dependencies=guard, responses=denied)
    async def routing() -> dict[str, Any]:
        """The routing table in force, and the last reload error."""
        return {
            "config": gw.router.config.model_dump(mode="json"),
            "last_error": gw.router.last_error,
            "reloads": gw.router.reloads,
        }

    @app.post(
        "/admin/routing/reload",
        dependencies=guard,
        responses={400: {"model": ErrorBody}, **denied},
    )
    async def reload_routing() -> Any:
        """Re-read the routing file now (it is also watched)."""
        try:
            await gw.reload_routing()
        except ValueError as exc:
            return _error(400, "bad_routing_file", str(exc))
        return {"status": "reloaded", "arms": sorted(gw.router.arms)}
