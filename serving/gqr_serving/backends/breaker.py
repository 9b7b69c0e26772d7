"""Timeouts, a retry budget and a circuit breaker around one backend.

A slow or dead LLM server must cost a request at most its budget, and must not be hammered
while it is down: after ``failure_threshold`` consecutive failures the breaker opens and
calls fail fast for ``reset_after_s``; then one probe call is let through (half-open).
Retries are allowed only while they stay under ``ratio`` of recent calls (plus a small
floor), so a retry storm never doubles the load on a struggling server.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from gqr_serving.backends.base import (
    BackendError,
    BackendUnavailable,
    GenerationParams,
    LLMBackend,
    PromptInput,
)

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Consecutive-failure breaker; ``allow()`` before a call, then ``record(ok)``."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold={failure_threshold}: expected >= 1")
        self.failure_threshold, self.reset_after_s, self._clock = (
            failure_threshold,
            reset_after_s,
            clock,
        )
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_after_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True  # exactly one probe; the others keep failing fast
            return True
        return False

    def record(self, ok: bool) -> None:
        self._probing = False
        if ok:
            self._failures, self._opened_at = 0, None
            return
        self._failures += 1
        if self._failures >= self.failure_threshold or self._opened_at is not None:
            self._opened_at = self._clock()


class RetryBudget:
    """Allows a retry while retries in the last ``window_s`` stay under
    ``ratio * calls + min_retries`` (Finagle-style retry budget)."""

    def __init__(
        self,
        ratio: float = 0.2,
        min_retries: int = 3,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio, self.min_retries, self.window_s, self._clock = (
            ratio,
            min_retries,
            window_s,
            clock,
        )
        self._calls: deque[float] = deque()
        self._retries: deque[float] = deque()

    def _trim(self, now: float) -> None:
        for q in (self._calls, self._retries):
            while q and now - q[0] > self.window_s:
                q.popleft()

    def record_call(self) -> None:
        now = self._clock()
        self._trim(now)
        self._calls.append(now)

    def try_retry(self) -> bool:
        now = self._clock()
        self._trim(now)
        if len(self._retries) < self.ratio * len(self._calls) + self.min_retries:
            self._retries.append(now)
            return True
        return False


class GuardedBackend:
    """``backend`` with a per-attempt timeout, bounded retries and a circuit breaker."""

    def __init__(
        self,
        backend: LLMBackend,
        *,
        timeout_s: float = 2.0,
        max_retries: int = 1,
        breaker: CircuitBreaker | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        self.backend = backend
        self.name = backend.name
        self.timeout_s, self.max_retries = timeout_s, max_retries
        self.breaker = breaker or CircuitBreaker()
        self.budget = budget or RetryBudget()

    async def generate(
        self, prompt: PromptInput, params: GenerationParams, *, deadline: float | None = None
    ) -> str:
        """Completion text, or :class:`BackendError` once attempts, budget or time run out.

        ``deadline`` is a ``time.monotonic()`` instant no attempt may run past.
        """
        self.budget.record_call()
        attempt = 0
        while True:
            if not self.breaker.allow():
                raise BackendUnavailable(f"backend {self.name}: circuit open", reason="open")
            timeout = self.timeout_s
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0.001:
                    self.breaker.record(True)  # not the backend's fault; release a probe slot
                    raise BackendUnavailable(f"backend {self.name}: no time left", "budget")
            try:
                text = await asyncio.wait_for(self.backend.generate(prompt, params), timeout)
            except (TimeoutError, BackendError) as exc:
                self.breaker.record(False)
                error = (
                    exc
                    if isinstance(exc, BackendError)
                    else BackendError(
                        f"backend {self.name}: no answer within {timeout:.3f}s", "timeout"
                    )
                )
                attempt += 1
                if attempt > self.max_retries or not self.budget.try_retry():
                    raise error from exc
                continue
            self.breaker.record(True)
            return text

    async def aclose(self) -> None:
        await self.backend.aclose()
