"""LLM backends behind one async interface: TGI, OpenAI-compatible servers, in-process.

Every backend turns a rendered prompt into completion text (``generate``) and raises
:class:`BackendError` on any failure; :class:`GuardedBackend` adds a per-attempt timeout, a
retry budget and a circuit breaker around one.
"""

from gqr_serving.backends.base import (
    BackendError,
    BackendUnavailable,
    GenerationParams,
    LLMBackend,
    PromptInput,
)
from gqr_serving.backends.breaker import CircuitBreaker, GuardedBackend, RetryBudget
from gqr_serving.backends.factory import make_backend

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "CircuitBreaker",
    "GenerationParams",
    "GuardedBackend",
    "LLMBackend",
    "PromptInput",
    "RetryBudget",
    "make_backend",
]
