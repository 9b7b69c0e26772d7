"""The backend contract: a prompt and decoding parameters in, completion text out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class BackendError(RuntimeError):
    """The backend failed to answer (connection, HTTP status, timeout, bad payload)."""

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason
        """Short label for metrics: timeout, connect, status, payload, open, error."""

    @classmethod
    def http_status(cls, name: str, status: int, body: str) -> BackendError:
        """An answer other than 200, with the start of its body."""
        return cls(f"{name}: HTTP {status}: {body[:200]}", "status")

    @classmethod
    def unexpected_payload(cls, name: str, body: str) -> BackendError:
        """A 200 answer whose body could not be read (raise it from one of PAYLOAD_ERRORS)."""
        return cls(f"{name}: unexpected payload {body[:200]!r}", "payload")


class BackendUnavailable(BackendError):
    """Not attempted: the circuit breaker is open or the request's budget is spent."""


PAYLOAD_ERRORS = (ValueError, KeyError, IndexError, TypeError)
"""What reading an answer body that is not what the server's API promises raises."""


@dataclass(frozen=True)
class PromptInput:
    """One prompt in both shapes: plain text (TGI, completions) and chat messages."""

    text: str
    messages: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class GenerationParams:
    """Decoding for one call; ``temperature == 0`` means greedy."""

    max_new_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int | None = None
    stop: tuple[str, ...] = field(default=())
    adapter_id: str | None = None
    """TGI LoRA adapter (multi-LoRA serving) or the OpenAI ``model`` name override."""


@runtime_checkable
class LLMBackend(Protocol):
    """An LLM server (or in-process model) that completes prompts."""

    name: str

    async def generate(self, prompt: PromptInput, params: GenerationParams) -> str:
        """The completion text; raises :class:`BackendError` on any failure."""
        ...

    async def aclose(self) -> None:
        """Release connections and models."""
        ...
