"""Any OpenAI-compatible server (vLLM, SGLang, TGI's ``/v1``) over httpx.

``mode="completions"`` posts the plain prompt to ``/v1/completions``; ``mode="chat"`` posts the
chat messages to ``/v1/chat/completions`` (the server applies its own chat template).
"""

from __future__ import annotations

from typing import Any

import httpx

from gqr_serving.backends.base import PAYLOAD_ERRORS, BackendError, GenerationParams, PromptInput
from gqr_serving.backends.httpclient import async_client


class OpenAIBackend:
    """An OpenAI-compatible server at ``url`` (with or without a trailing ``/v1``)."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        mode: str = "completions",
        api_key: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if mode not in ("completions", "chat"):
            raise ValueError(f"mode={mode!r}: expected 'completions' or 'chat'")
        base = url.rstrip("/")
        self.base = base if base.endswith("/v1") else base + "/v1"
        self.model, self.mode = model, mode
        self.name = f"openai:{self.base}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = async_client(base_url=self.base, timeout=timeout_s, headers=headers)

    async def generate(self, prompt: PromptInput, params: GenerationParams) -> str:
        body: dict[str, Any] = {
            "model": params.adapter_id or self.model,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p if params.temperature > 0 else 1.0,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        if self.mode == "chat":
            body["messages"] = list(prompt.messages) or [{"role": "user", "content": prompt.text}]
            path = "/chat/completions"
        else:
            body["prompt"] = prompt.text
            path = "/completions"
        try:
            resp = await self._http.post(path, json=body)
        except httpx.TimeoutException as exc:
            raise BackendError(f"{self.name}: timed out", "timeout") from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"{self.name}: {type(exc).__name__}: {exc}", "connect") from exc
        if resp.status_code != 200:
            raise BackendError.http_status(self.name, resp.status_code, resp.text)
        try:
            choice = resp.json()["choices"][0]
            text = choice["message"]["content"] if self.mode == "chat" else choice["text"]
            return str(text or "")
        except PAYLOAD_ERRORS as exc:
            raise BackendError.unexpected_payload(self.name, resp.text) from exc

    async def aclose(self) -> None:
        await self._http.aclose()
