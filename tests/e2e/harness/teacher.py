"""Stand-in for the bootstrap stage's teacher LLM (an OpenAI-compatible chat server).

No real LLM can run here, so :class:`WorldTeacher` answers ``POST /v1/chat/completions`` with
the simulated world's own best list for the asked query: it reads the user query from the
rendered prompt (the universal template's ``<query>`` block) and returns
``World.oracle_list`` of a request with that query (no session history, multi-choice, the
request's three queries), as ``q1 <SEP> q2 <SEP> q3``. That is a teacher that knows the click
model: far better than any model here, as a strong LLM is meant to be. It refuses requests
without ``Authorization: Bearer <key>`` (401), like a hosted API.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SEP = " <SEP> "


class WorldTeacher:
    """The world's oracle behind an OpenAI chat completions endpoint; ``url`` ends in /v1."""

    def __init__(self, api_key: str, seed: int = 0, n_queries: int = 3) -> None:
        from gqr_training.sim import World

        self.world = World(seed)
        self.api_key = api_key
        self.n_queries = n_queries
        self.asked = 0
        self.refused = 0
        self._lock = threading.Lock()
        teacher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization", "")
                status, reply = teacher.answer(self.path, auth, body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def best(self, query: str) -> list[str]:
        """The world's best list for a request of ``query``."""
        from gqr_training.sim.sessions import Request

        req = Request(
            task="suggestion",
            session_id="teacher",
            user_key="teacher",
            query=query,
            history=(),
            ai_response=None,
            ts=datetime.now(UTC),
            n_queries=self.n_queries,
            component="multiChoice",
        )
        return self.world.oracle_list(req)

    def answer(self, path: str, auth: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON reply) to one POST."""
        if not path.startswith("/v1/chat/completions"):
            return 404, {"error": "not found"}
        if auth != f"Bearer {self.api_key}":
            with self._lock:
                self.refused += 1
            return 401, {"error": "invalid api key"}
        ask: dict[str, Any] = json.loads(body)
        user = ask["messages"][-1]["content"]
        query = user.split("<query>\n", 1)[1].split("\n", 1)[0].strip()
        with self._lock:
            self.asked += 1
        text = SEP.join(self.best(query))
        return 200, {"choices": [{"message": {"role": "assistant", "content": text}}]}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
