"""The gateway's outbound HTTP: cheap JSON posts on the request path, and httpx clients.

Profiled at load, per call (CPU, one keep-alive connection, loopback):
httpx 1.27 ms, httpx with the sniffio fix below 0.81 ms, aiohttp 0.17 ms. The calls made on
every request (TGI ``/generate``, the CTR predictor, up to three times when reranking) go
through :class:`JSONPoster` (aiohttp); other clients stay on httpx, made by
:func:`async_client` (huggingface_hub's inference client, TGI's ``transport: client``, brings
its own httpx2).

The sniffio fix: httpcore runs ``import sniffio`` on every request. Without sniffio installed,
each of those imports fails only after searching every ``sys.path`` entry (~20 ``stat``
calls). Recording the miss in ``sys.modules`` makes the import fail at once, as before
(``ModuleNotFoundError``: every caller then assumes asyncio).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from typing import Any

import aiohttp
import httpx

MAX_CONNECTIONS = 100  # httpx's default pool size


def cache_missing_sniffio() -> None:
    """Remember that sniffio is absent (a no-op when it is installed or already imported)."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]  # the documented "absent" mark


def async_client(**kwargs: Any) -> httpx.AsyncClient:
    """``httpx.AsyncClient(**kwargs)``, with the sniffio miss cached first."""
    cache_missing_sniffio()
    return httpx.AsyncClient(**kwargs)


class JSONPoster:
    """POSTs JSON to one server over pooled keep-alive connections (aiohttp).

    ``post`` raises ``TimeoutError`` past its timeout and ``aiohttp.ClientError`` when the
    server cannot be reached or hangs up; any HTTP status is returned, not raised.
    """

    def __init__(self, base_url: str, *, timeout_s: float) -> None:
        self.base_url, self.timeout_s = base_url.rstrip("/"), timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the running event loop (a test's app may be
        # started on several loops in turn), and may not be made outside one.
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._loop is not loop:
            self._loop = loop
            session = self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
            )
        return session

    async def post(self, path: str, body: Any, timeout_s: float | None = None) -> tuple[int, bytes]:
        """(HTTP status, response body) of ``POST base_url + path`` with ``body`` as JSON."""
        timeout = None if timeout_s is None else aiohttp.ClientTimeout(total=timeout_s)
        kwargs: dict[str, Any] = {"json": body}
        if timeout is not None:
            kwargs["timeout"] = timeout
        async with self._get().post(self.base_url + path, **kwargs) as resp:
            return resp.status, await resp.read()

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()
