"""Hugging Face Text Generation Inference (TGI), through ``huggingface_hub``'s inference client
or plain HTTP.

``transport: client`` calls :meth:`huggingface_hub.AsyncInferenceClient.text_generation`, which
posts TGI's API (``{"inputs", "parameters"}`` to the server's root route) over its own httpx2
connection pool. ``transport: http`` posts ``/generate`` itself through
:class:`~gqr_serving.backends.httpclient.JSONPoster` (aiohttp: ~0.17 ms of CPU per call against
~0.8-1.3 ms with httpx, on the request path of every LLM call); so does every call that selects a
LoRA ``adapter_id``, whatever the transport (the calls of a DPO-trained version), and every call
made while the Hub is in offline mode (``HF_HUB_OFFLINE=1``: the inference client refuses to send
any request then, a TGI server in the cluster included). Both map failures the same way: timeout,
connect, status (TGI's 422/424/429... with the start of its body), payload.

The inference client sends no Hugging Face token (it would otherwise send ``HF_TOKEN`` or the
login token of the machine to the TGI URL).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import httpx2
from huggingface_hub import AsyncInferenceClient, constants
from huggingface_hub.errors import HfHubHTTPError

from gqr_serving.backends.base import PAYLOAD_ERRORS, BackendError, GenerationParams, PromptInput
from gqr_serving.backends.httpclient import JSONPoster

# ``_normalize_headers`` of the inference client drops the headers whose value is None, ours
# last: this removes the Authorization header it would build from an implicit token.
_NO_TOKEN: dict[str, Any] = {"authorization": None}


def _parameters(params: GenerationParams) -> dict[str, Any]:
    """TGI's ``parameters``: the same for both transports (greedy unless temperature > 0)."""
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
    """A TGI server at ``url``; ``transport`` ``client`` (huggingface_hub) or ``http``."""

    def __init__(self, url: str, *, timeout_s: float = 10.0, transport: str = "client") -> None:
        if transport not in ("client", "http"):
            raise ValueError(f"transport={transport!r}: expected 'client' or 'http'")
        self.url = url.rstrip("/")
        self.name = f"tgi:{self.url}"
        self.transport = transport
        self.timeout_s = timeout_s
        self._http = JSONPoster(self.url, timeout_s=timeout_s)
        self._client: AsyncInferenceClient | None = None

    async def generate(self, prompt: PromptInput, params: GenerationParams) -> str:
        if self.transport == "http" or params.adapter_id or constants.is_offline_mode():
            return await self._generate_http(prompt.text, params)
        return await self._generate_client(prompt.text, params)

    async def _generate_client(self, text: str, params: GenerationParams) -> str:
        if self._client is None:
            self._client = AsyncInferenceClient(
                model=self.url, timeout=self.timeout_s, headers=_NO_TOKEN
            )
        p = _parameters(params)
        try:
            generated = await self._client.text_generation(
                text,
                details=False,
                max_new_tokens=p["max_new_tokens"],
                do_sample=p["do_sample"],
                temperature=p.get("temperature"),
                top_p=p.get("top_p"),
                seed=p.get("seed"),
                stop=p["stop"],
            )
        except TimeoutError as exc:  # InferenceTimeoutError: httpx2's timeouts, converted
            raise BackendError(f"{self.name}: timed out", "timeout") from exc
        except HfHubHTTPError as exc:  # an HTTP status without TGI's {"error", "error_type"}
            raise _status_error(self.name, exc) from exc
        except httpx2.TransportError as exc:  # refused, reset, hung up
            raise BackendError(f"{self.name}: {type(exc).__name__}: {exc}", "connect") from exc
        except httpx2.HTTPError as exc:  # TGI's own errors (validation, overloaded, ...)
            raise _status_error(self.name, exc) from exc
        except PAYLOAD_ERRORS as exc:  # a 200 whose body is not TGI's answer
            raise BackendError(f"{self.name}: unexpected payload ({exc})", "payload") from exc
        except Exception as exc:  # anything else the client raises: still a BackendError
            raise BackendError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(generated, str):
            raise BackendError.unexpected_payload(self.name, repr(generated))
        return generated

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
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()  # type: ignore[no-untyped-call]


def _status_error(name: str, exc: Exception) -> BackendError:
    """``BackendError.http_status`` from a client error: its HTTP status and body when the
    error (or the HfHubHTTPError it was raised from, for TGI's typed errors) carries them."""
    for err in (exc, exc.__cause__):
        response = getattr(err, "response", None)
        if isinstance(err, HfHubHTTPError) and response is not None:
            try:
                body = response.text
            except httpx2.ResponseNotRead:  # over the client's 1 MB read-on-error limit
                body = ""
            return BackendError.http_status(name, response.status_code, body)
    return BackendError(f"{name}: {type(exc).__name__}: {exc}", "status")
