"""Scripted LLM backends, an in-memory COR and an in-process app client for gateway tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from gqr_contracts.routing import ArmConfig
from gqr_serving.backends import (
    BackendError,
    CircuitBreaker,
    GenerationParams,
    GuardedBackend,
    PromptInput,
    RetryBudget,
)
from gqr_serving.cor import CORRetriever
from gqr_serving.gateway import GatewaySettings, create_app
from gqr_serving.gateway.service import GatewayParts

Reply = str | Callable[[PromptInput], str] | BaseException

SUCCESSORS = {
    "what is green tea": (
        ("green tea benefits", 9),
        ("matcha vs green tea", 5),
        ("green tea caffeine", 4),
        ("how to brew green tea", 2),
    ),
    "rome weather": (("rome hotels", 3), ("rome in may", 2), ("rome weather october", 1)),
}


class ScriptedBackend:
    """Answers every prompt with ``reply`` (text, a function of the prompt, or an error)."""

    def __init__(self, reply: Reply, delay: float = 0.0, name: str = "scripted") -> None:
        self.reply, self.delay, self.name = reply, delay, name
        self.prompts: list[PromptInput] = []
        self.params: list[GenerationParams] = []

    async def generate(self, prompt: PromptInput, params: GenerationParams) -> str:
        self.prompts.append(prompt)
        self.params.append(params)
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(self.reply, BaseException):
            raise self.reply
        return self.reply(prompt) if callable(self.reply) else self.reply

    async def aclose(self) -> None:
        return None


def down() -> BackendError:
    return BackendError("connection refused", "connect")


def cor_source() -> CORRetriever:
    totals = {q: sum(c for _, c in rows) for q, rows in SUCCESSORS.items()}
    return CORRetriever(SUCCESSORS, totals, version="test")


def guarded(backend: Any, timeout_s: float = 1.0) -> GuardedBackend:
    return GuardedBackend(
        backend,
        timeout_s=timeout_s,
        max_retries=0,
        breaker=CircuitBreaker(3, 5.0),
        budget=RetryBudget(),
    )


def settings(tmp_path: Path, **kw: Any) -> GatewaySettings:
    base: dict[str, Any] = dict(
        log_root=str(tmp_path / "logs"),
        llm_url="http://127.0.0.1:9",
        spool_dir=tmp_path / "spool",
        stats_refresh_s=0.0,
        request_budget_s=2.0,
    )
    base.update(kw)
    return GatewaySettings(**base)


@contextlib.asynccontextmanager
async def client(
    tmp_path: Path,
    backend: Any,
    *,
    cor: Any = "default",
    parts: GatewayParts | None = None,
    **kw: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on a started app (lifespan run) whose every arm uses ``backend``."""
    source = cor_source() if cor == "default" else cor

    def factory(arm: ArmConfig) -> GuardedBackend:
        return backend if isinstance(backend, GuardedBackend) else guarded(backend)

    parts = parts or GatewayParts(backend_factory=factory, cor_source=source)
    parts.backend_factory = parts.backend_factory or factory
    parts.cor_source = parts.cor_source if parts.cor_source is not None else source
    app = create_app(settings(tmp_path, **kw), parts)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c
