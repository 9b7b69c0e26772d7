"""Stand-in for the kubelet's ConfigMap volume: keeps a local file equal to one key of a
ConfigMap, replaced atomically on every change (the kubelet swaps a ``..data`` symlink: a new
inode, which is what the gateway's ``--routing-file`` poll notices).

Differences: polled every ``poll_s`` (the kubelet syncs within about a minute); a deleted
ConfigMap or key leaves the last file in place.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path
from typing import Any

from tests.e2e.harness._poller import Poller


class ConfigMapFile(Poller):
    """``ConfigMapFile(api_client, ns, "<cr>-routing", "routing.json", path).start()``."""

    name = "configmap-file"

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        configmap: str,
        key: str,
        path: Path,
        *,
        poll_s: float = 0.5,
    ) -> None:
        from kubernetes import client

        super().__init__(poll_s)
        self.core = client.CoreV1Api(api_client)
        self.namespace, self.configmap, self.key = namespace, configmap, key
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writes = 0
        self.content: bytes | None = None
        self._written = threading.Event()

    def step(self) -> None:
        from kubernetes.client.rest import ApiException

        try:
            cm = self.core.read_namespaced_config_map(self.configmap, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        if self.key in (cm.data or {}):
            data = str(cm.data[self.key]).encode()
        elif self.key in (cm.binary_data or {}):
            data = base64.b64decode(cm.binary_data[self.key])
        else:
            return
        if data == self.content:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.path)
        self.content = data
        self.writes += 1
        self.note(f"wrote {self.path} ({len(data)} bytes, write {self.writes})")
        self._written.set()

    def wait_written(self, timeout: float = 60.0) -> bytes:
        """Blocks until the file has been written once; its content."""
        if not self._written.wait(timeout):
            raise AssertionError(
                f"ConfigMap {self.namespace}/{self.configmap} key {self.key} not projected "
                f"after {timeout}s\n{self.events_text()}"
            )
        assert self.content is not None
        return self.content
