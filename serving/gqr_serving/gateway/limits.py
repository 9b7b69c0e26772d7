"""Bounded input: a body over the limit is answered 413 before anything parses it, and error
answers quote at most a short excerpt of what was sent (never NaN or a megabyte echoed back)."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
EXCERPT_CHARS = 80


def excerpt(value: Any) -> Any:
    """What an error answer may say about an input value: scalars as they are (a string cut to
    80 characters; NaN and infinities named, as JSON cannot hold them), containers by size."""
    if isinstance(value, str):
        return value if len(value) <= EXCERPT_CHARS else value[:EXCERPT_CHARS] + "..."
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return f"<object with {len(value)} keys>"
    if isinstance(value, list | tuple):
        return f"<list of {len(value)} items>"
    return excerpt(repr(value))


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, by their Content-Length or, for a
    chunked body, as soon as the bytes received pass the limit; smaller bodies reach the app
    unchanged."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        messages, size = [], 0
        while True:  # read the body here, never past the limit
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send, size, more=True)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        replay = iter(messages)

        async def replayed() -> Any:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, send: Any, size: int, *, more: bool = False) -> None:
        got = f"more than {self.max_bytes}" if more else str(size)
        detail = f"the body has {got} bytes; at most {self.max_bytes} are accepted"
        body = json.dumps({"error": "body_too_large", "detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
