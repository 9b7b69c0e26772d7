"""Hugging Face Text Generation Inference (TGI) through its ``text-generation`` client.

The client (``AsyncClient.generate``) lacks TGI's multi-LoRA ``adapter_id`` parameter, so a
call that selects an adapter posts ``/generate`` itself with httpx, the same HTTP API.
"""

from __future__ import annotations

from typing import Any

import httpx

from gqr_serving.backends.base import BackendError, GenerationParams, PromptInput


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
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout_s)
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
            resp = await self._http.post("/generate", json=body)
        except httpx.TimeoutException as exc:
            raise BackendError(f"{self.name}: timed out", "timeout") from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"{self.name}: {type(exc).__name__}: {exc}", "connect") from exc
        if resp.status_code != 200:
            raise BackendError(f"{self.name}: HTTP {resp.status_code}: {resp.text[:200]}", "status")
        try:
            payload = resp.json()
            if isinstance(payload, list):
                payload = payload[0]
            return str(payload["generated_text"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise BackendError(
                f"{self.name}: unexpected payload {resp.text[:200]!r}", "payload"
            ) from exc

    async def aclose(self) -> None:
        await self._http.aclose()
