"""A small local server speaking the Hugging Face Hub's file API, for testing ``hf://`` through
the real ``huggingface_hub`` client (``HF_ENDPOINT`` points it here). It serves folders the test
built, as model repositories:

- ``GET /api/models/<org>/<name>[/revision/<rev>]``: the repository's sha and file list;
- ``GET /api/models/<org>/<name>/tree/<rev>``: its files (path, size, git blob id), the listing
  ``snapshot_download`` reads since huggingface_hub 1.x (one page, the whole tree);
- ``HEAD|GET /<org>/<name>/resolve/<rev>/<path>``: a file, with the commit and ETag headers
  the client caches by;
- a repository marked gated answers 401 unless ``Authorization: Bearer <token>`` matches;
  an unknown one answers 404 with ``X-Error-Code: RepositoryNotFound``, as the Hub does.

A stand-in at the boundary the tests cannot cross (no network to the real Hub); the client,
its cache and its errors are the real ones.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    folder: Path
    token: str | None = None
    """Gated: the bearer token it wants."""

    @property
    def sha(self) -> str:
        digest = hashlib.sha1()
        for path in sorted(self.files()):
            digest.update(path.encode() + b"\0" + (self.folder / path).read_bytes())
        return digest.hexdigest()

    def files(self) -> list[str]:
        return sorted(
            p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file()
        )


@dataclass
class HubServer:
    url: str
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def add(self, repo_id: str, folder: Path, *, token: str | None = None) -> None:
        self.repos[repo_id] = Repo(folder, token)


def _handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append(f"{self.command} {path}")
            parts = path.strip("/").split("/")
            api = parts[:2] == ["api", "models"]
            repo_id = "/".join(parts[2:4] if api else parts[0:2])
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._send(404, b"{}", {"X-Error-Code": "RepositoryNotFound"}, body)
            if repo.token and self.headers.get("Authorization") != f"Bearer {repo.token}":
                return self._send(401, b"{}", {"X-Error-Code": "GatedRepo"}, body)
            if api and parts[4:5] == ["tree"]:
                tree = [
                    {"type": "file", "path": f, "size": len(data), "oid": _blob_id(data)}
                    for f in repo.files()
                    for data in [(repo.folder / f).read_bytes()]
                ]
                return self._send(200, json.dumps(tree).encode(), {}, body)
            if api:
                info = {
                    "id": repo_id,
                    "sha": repo.sha,
                    "siblings": [{"rfilename": f} for f in repo.files()],
                }
                return self._send(200, json.dumps(info).encode(), {}, body)
            if parts[2:3] != ["resolve"] or len(parts) < 5:
                return self._send(404, b"{}", {"X-Error-Code": "EntryNotFound"}, body)
            file = repo.folder / "/".join(parts[4:])
            if not file.is_file():
                return self._send(404, b"{}", {"X-Error-Code": "EntryNotFound"}, body)
            data = file.read_bytes()
            etag = f'"{hashlib.sha256(data).hexdigest()}"'
            self._send(200, data, {"X-Repo-Commit": repo.sha, "ETag": etag}, body)

        def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(key, value)
            self.end_headers()
            if body:
                self.wfile.write(data)

    return Handler


def _blob_id(data: bytes) -> str:
    """Git's blob id of a file's content (the Hub's ``oid`` of a non-LFS file)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@contextmanager
def hub_server() -> Iterator[HubServer]:
    """The hub on a free loopback port until the block ends."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    hub = HubServer(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(hub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def online(monkeypatch: Any) -> None:
    """Let the client reach this server in a process where other tests set HF_HUB_OFFLINE
    (read once, when huggingface_hub is imported)."""
    import huggingface_hub.constants as hub_constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
