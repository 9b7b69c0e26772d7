"""``BackendSpec`` (one arm's backend, as the routing file writes it) -> a guarded backend."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gqr_serving.backends.base import LLMBackend
from gqr_serving.backends.breaker import CircuitBreaker, GuardedBackend, RetryBudget


class BackendSpec(BaseModel):
    """Where an arm's LLM runs and how hard to try it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["tgi", "openai", "local"] = Field(
        "tgi", description="tgi (text-generation), openai (vLLM/SGLang/TGI /v1), local."
    )
    url: str = Field("", description="Server base URL (tgi, openai).")
    model: str = Field("", description="openai: model name; local: model folder.")
    mode: Literal["completions", "chat"] = Field("completions", description="openai only.")
    transport: Literal["client", "http"] = Field(
        "client", description="tgi: the text-generation client, or plain HTTP /generate."
    )
    adapter_id: str | None = Field(None, description="TGI LoRA adapter to select.")
    timeout_s: float = Field(2.0, gt=0, le=120, description="Per-attempt timeout.")
    max_retries: int = Field(1, ge=0, le=5, description="Retries after a failed attempt.")
    failure_threshold: int = Field(5, ge=1, le=1000, description="Failures that open the breaker.")
    reset_after_s: float = Field(5.0, gt=0, le=600, description="Open time before a probe.")

    def check(self) -> BackendSpec:
        if self.kind in ("tgi", "openai") and not self.url:
            raise ValueError(f"backend kind {self.kind!r} needs 'url'")
        if self.kind == "openai" and not self.model:
            raise ValueError("backend kind 'openai' needs 'model' (the served model name)")
        if self.kind == "local" and not self.model:
            raise ValueError("backend kind 'local' needs 'model' (a model folder)")
        return self


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
