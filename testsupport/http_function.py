"""A threaded HTTP server in the test's own process that answers each request with a function
of it: for a stand-in whose answer depends on what it is asked (the gateway's ``/v1/stats``
since a given time), where ``http_stub``'s fixed script cannot tell."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Reply:
    """What to answer; no ``Content-Type`` header when ``content_type`` is None."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = None


def json_reply(value: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(value).encode(), "application/json")


Answer = Callable[[str, str, bytes], Reply]
"""The reply to a request's method (``GET``, ``POST``), path (with its query) and body."""


class FunctionServer:
    """Serves ``answer`` on ``host`` (a free port) from a daemon thread until ``close()``;
    a context manager. With ``authorization``, a request without exactly that
    ``Authorization`` header gets a 401 and never reaches ``answer``."""

    def __init__(
        self, answer: Answer, host: str = "127.0.0.1", *, authorization: str | None = None
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if authorization is not None and self.headers.get("Authorization") != authorization:
                    reply = Reply(401)
                else:
                    reply = answer(self.command, self.path, body)
                self.send_response(reply.status)
                if reply.content_type is not None:
                    self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.host = host
        self.port = int(self.server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
