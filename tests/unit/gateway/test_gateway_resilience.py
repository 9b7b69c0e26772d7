"""Circuit breaker, retry budget and per-attempt timeouts around a backend."""

from __future__ import annotations

import time

import pytest
from gateway_fakes import ScriptedBackend, down

from gqr_serving.backends import (
    BackendError,
    BackendUnavailable,
    CircuitBreaker,
    GenerationParams,
    GuardedBackend,
    PromptInput,
    RetryBudget,
)

pytestmark = pytest.mark.anyio
P, G = PromptInput("prompt"), GenerationParams()


def test_breaker_opens_fails_fast_then_probes_once() -> None:
    now = [0.0]
    b = CircuitBreaker(failure_threshold=2, reset_after_s=5, clock=lambda: now[0])
    for _ in range(2):
        assert b.allow()
        b.record(False)
    assert b.state == "open" and not b.allow()
    now[0] = 5.0
    assert b.allow() and not b.allow()  # one probe only
    b.record(True)
    assert b.state == "closed" and b.allow()


def test_retry_budget_caps_retries_to_a_share_of_calls() -> None:
    budget = RetryBudget(ratio=0.1, min_retries=1, clock=lambda: 0.0)
    for _ in range(20):
        budget.record_call()
    assert sum(budget.try_retry() for _ in range(10)) == 3  # 0.1 * 20 + 1


async def test_guarded_retries_then_raises_and_opens() -> None:
    backend = ScriptedBackend(down())
    g = GuardedBackend(backend, timeout_s=1, max_retries=1, breaker=CircuitBreaker(2, 60))
    with pytest.raises(BackendError):
        await g.generate(P, G)
    assert len(backend.prompts) == 2  # one retry
    with pytest.raises(BackendUnavailable, match="circuit open"):
        await g.generate(P, G)
    assert len(backend.prompts) == 2


async def test_timeout_and_deadline_bound_the_call() -> None:
    g = GuardedBackend(ScriptedBackend("x", delay=2.0), timeout_s=0.05, max_retries=0)
    t0 = time.monotonic()
    with pytest.raises(BackendError) as info:
        await g.generate(P, G)
    assert info.value.reason == "timeout" and time.monotonic() - t0 < 0.5
    g2 = GuardedBackend(ScriptedBackend("x", delay=2.0), timeout_s=10, max_retries=3)
    t0 = time.monotonic()
    with pytest.raises(BackendError):
        await g2.generate(P, G, deadline=time.monotonic() + 0.1)
    assert time.monotonic() - t0 < 0.5
