"""A scripted HTTP/1.1 server on raw asyncio: keep-alive connections, ``Content-Length``
bodies, each request answered by the next reply of a script (or always the same one).

For a test that needs an LLM server or the CTR predictor to answer exactly so, failures
included: a reply is ``(status, body)``; status 0 hangs up without answering, a negative
status never answers (the client must give up). Every request's JSON body is kept in
``seen``. For the instant LLM of ``benchmarks/bench_gateway.py``: run as a script, it answers
every request with :data:`INSTANT_TGI_REPLY` (TGI's ``/generate`` answer) at a few tens of
microseconds of CPU each, so the gateway's own cost is what a benchmark measures::

    python testsupport/http_stub.py PORT

Imports nothing of this package, so it runs as a script from anywhere.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from http import HTTPStatus
from typing import Any

Reply = tuple[int, bytes]
INSTANT_TGI_REPLY = json.dumps(
    {
        "generated_text": "green tea side effects <SEP> best green tea brands "
        "<SEP> green tea caffeine <SEP> iced green tea <SEP> green tea for sleep "
        "<SEP> green tea recipes"
    }
).encode()


class ScriptedServer:
    """Answers request i with ``replies[i]`` (popped), or every request with ``always``."""

    def __init__(self, replies: list[Reply] | None = None, *, always: Reply | None = None) -> None:
        self.replies: list[Reply] = replies if replies is not None else []
        self.always = always
        self.seen: list[Any] = []
        """The JSON body of every scripted request, in order (not kept with ``always``)."""
        self.heads: list[str] = []
        """The request line and headers of every scripted request, likewise."""
        self._server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> ScriptedServer:
        self._server = await asyncio.start_server(self._handle, host, port)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        await asyncio.sleep(0.05)  # the handlers see the client's connections close
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        assert self._server is not None, "start() first"
        await self._server.serve_forever()

    def _reply(self, head: bytes, body: bytes) -> Reply:
        if self.always is not None:
            return self.always
        self.heads.append(head.decode("latin-1"))
        self.seen.append(json.loads(body))
        return self.replies.pop(0)

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                status, body = self._reply(head, await r.readexactly(_content_length(head)))
                if status < 0:  # never answer: wait for the client to give up
                    await r.read()
                    return
                if status == 0:  # hang up without an answer
                    return
                w.write(_response(status, body))
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


@functools.lru_cache(maxsize=64)  # the instant TGI's one answer is built once
def _response(status: int, body: bytes) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


async def _serve_instant_tgi(port: int) -> None:
    server = await ScriptedServer(always=(200, INSTANT_TGI_REPLY)).start(port=port)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve_instant_tgi(int(sys.argv[1])))
