"""Hugging Face Text Generation Inference (TGI) through its ``text-generation`` client.

The client (``AsyncClient.generate``) lacks TGI's multi-LoRA ``adapter_id`` parameter, so a
call that selects an adapter posts ``/generate`` itself, the same HTTP API. That direct post
goes through :class:`~gqr_serving.backends.httpclient.JSONPoster` (aiohttp: ~0.17 ms of CPU
per call against ~0.8-1.3 ms with httpx, on the request path of every LLM call).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from gqr_serving.backends.base import PAYLOAD_ERRORS, BackendError, GenerationParams, PromptInput
from gqr_serving.backends.httpclient import JSONPoster


def _parameters(params: GenerationParams) -> dict[str, Any]:
    sample = params.temperature > 0
    out: dict[str, Any] = {
        "max_new_tokens": params.max_new_tokens,
        "do_sample": sample,
        "details": False,
        "stop": list(params.stop),
    }
    if sample:
        out["temperature"] = params.temperature
        if 0 < params.top_p < 1:
            out["top_p"] = params.top_p
    if params.seed is not None:
        out["seed"] = params.seed
    if params.adapter_id:
        out["adapter_id"] = params.adapter_id
    return out


class TGIBackend:
    """A TGI server at ``url``; ``transport`` ``client`` (text-generation) or ``http``."""

    def __init__(self, url: str, *, timeout_s: float = 10.0, transport: str = "client") -> None:
        if transport not in ("client", "http"):
            raise ValueError(f"transport={transport!r}: expected 'client' or 'http'")
        self.url = url.rstrip("/")
        self.name = f"tgi:{self.url}"
        self.transport = transport
        self.timeout_s = timeout_s
        self._http = JSONPoster(self.url, timeout_s=timeout_s)
        self._client: Any = None

    async def generate(self, prompt: PromptInput, params: GenerationParams) -> str:
        if self.transport == "http" or params.adapter_id:
            return await self._generate_http(prompt.text, params)
        return await self._generate_client(prompt.text, params)

    async def _generate_client(self, text: str, params: GenerationParams) -> str:
        from text_generation import AsyncClient
        from text_generation.errors import UnknownError

        if self._client is None:
            self._client = AsyncClient(self.url, timeout=max(1, round(self.timeout_s)))
        sample = params.temperature > 0
        try:
            response = await self._client.generate(
                text,
                do_sample=sample,
                max_new_tokens=params.max_new_tokens,
                temperature=params.temperature if sample else None,
                top_p=params.top_p if sample and 0 < params.top_p < 1 else None,
                seed=params.seed,
                stop_sequences=list(params.stop),
            )
        except (UnknownError, Exception) as exc:  # aiohttp, TGI errors, bad payloads
            raise BackendError(f"{self.name}: {type(exc).__name__}: {exc}", "status") from exc
        return str(response.generated_text)

    async def _generate_http(self, text: str, params: GenerationParams) -> str:
        body = {"inputs": text, "parameters": _parameters(params)}
        try:
            status, raw = await self._http.post("/generate", body)
        except TimeoutError as exc:  # aiohttp's timeouts are TimeoutError subclasses
            raise BackendError(f"{self.name}: timed out", "timeout") from exc
        except aiohttp.ClientError as exc:
            raise BackendError(f"{self.name}: {type(exc).__name__}: {exc}", "connect") from exc
        reply = raw.decode("utf-8", "replace")
        if status != 200:
            raise BackendError.http_status(self.name, status, reply)
        try:
            payload = json.loads(raw)
            if isinstance(payload, list):
                payload = payload[0]
            return str(payload["generated_text"])
        except PAYLOAD_ERRORS as exc:
            raise BackendError.unexpected_payload(self.name, reply) from exc

    async def aclose(self) -> None:
        await self._http.aclose()
