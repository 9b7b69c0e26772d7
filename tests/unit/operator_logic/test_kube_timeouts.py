"""Every Kubernetes call the operator makes itself has a timeout: an apiserver that accepts the
connection and never answers costs a bounded wait and an ApiError (a degraded pass), never a
worker stuck for good."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from gqr_operator.kube import KINDS, ApiError, Kube


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections, reads the request, answers nothing."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_a_silent_apiserver_times_out_as_an_api_error(silent_server: str) -> None:
    cfg = client.Configuration()
    cfg.host = silent_server
    kube = Kube(client.ApiClient(cfg), timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(ApiError, match="Unreachable: GET /api/v1/namespaces/ns/configmaps"):
        kube.list(KINDS[("v1", "ConfigMap")], "ns")
    assert time.monotonic() - started < 10  # the timeout (and any client retries), not forever
