"""``BackendSpec`` (one arm's backend in the routing document) -> a guarded backend."""

from __future__ import annotations

from gqr_contracts.routing import BackendSpec
from gqr_serving.backends.base import LLMBackend
from gqr_serving.backends.breaker import CircuitBreaker, GuardedBackend, RetryBudget


def make_backend(spec: BackendSpec, *, api_key: str | None = None) -> GuardedBackend:
    """The backend ``spec`` describes, wrapped in timeout + retry budget + breaker."""
    spec.check()
    inner: LLMBackend
    if spec.kind == "tgi":
        from gqr_serving.backends.tgi import TGIBackend

        inner = TGIBackend(spec.url, timeout_s=spec.timeout_s, transport=spec.transport)
    elif spec.kind == "openai":
        from gqr_serving.backends.openai import OpenAIBackend

        inner = OpenAIBackend(
            spec.url, spec.model, mode=spec.mode, api_key=api_key, timeout_s=spec.timeout_s
        )
    else:
        from gqr_serving.backends.local import LocalBackend

        inner = LocalBackend(spec.model)
    return GuardedBackend(
        inner,
        timeout_s=spec.timeout_s,
        max_retries=spec.max_retries,
        breaker=CircuitBreaker(spec.failure_threshold, spec.reset_after_s),
        budget=RetryBudget(),
    )
