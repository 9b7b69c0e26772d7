"""Cluster DNS stand-in, the harness side: the hosts table (a JSON file the processes' resolver
shim reads, see ``dns_shim/sitecustomize.py``), loopback addresses for Services, and the env
that gives a subprocess the shim.

Each Service gets its own address in 127/8 (all of it is loopback on Linux), so it keeps its
real port: ``http://<svc>.<ns>.svc.cluster.local:8080`` reaches a local server bound to
``127.a.b.c:8080``. Differences from cluster DNS: only Python processes started with
``HostsFile.env()`` (or the test process inside ``resolver_installed``) resolve these names; no
search domains, so the harness lists the ``<svc>.<ns>``, ``<svc>.<ns>.svc`` and full forms.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import random
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType

SHIM_DIR = Path(__file__).resolve().parent / "dns_shim"
ENV = "GQR_TEST_HOSTS_FILE"


def service_names(service: str, namespace: str) -> list[str]:
    """The names a pod may use for a Service (its search path expanded)."""
    return [
        f"{service}.{namespace}.svc.cluster.local",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}",
    ]


class HostsFile:
    """The JSON name -> address table, rewritten atomically on each change."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._table: dict[str, str] = {}
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._table, indent=1, sort_keys=True))
        os.replace(tmp, self.path)  # a new inode: readers notice the change

    def set(self, names: str | Iterable[str], address: str) -> None:
        """Resolve ``names`` to ``address`` (an IP; the port stays the URL's)."""
        with self._lock:
            for name in [names] if isinstance(names, str) else names:
                self._table[name.lower().rstrip(".")] = address
            self._write()

    def remove(self, names: str | Iterable[str]) -> None:
        with self._lock:
            for name in [names] if isinstance(names, str) else names:
                self._table.pop(name.lower().rstrip("."), None)
            self._write()

    def entries(self) -> dict[str, str]:
        with self._lock:
            return dict(self._table)

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: nothing) plus the shim first on PYTHONPATH and the table's path.
        For a subprocess: ``Popen(..., env=hosts.env(os.environ))``; for LocalKubelet's
        ``extra_env``: ``hosts.env()``."""
        out = dict(base or {})
        rest = out.get("PYTHONPATH") or (os.environ.get("PYTHONPATH", "") if base is None else "")
        out["PYTHONPATH"] = os.pathsep.join(p for p in (str(SHIM_DIR), rest) if p)
        out[ENV] = str(self.path)
        return out


class LoopbackAllocator:
    """Hands out distinct 127.x.y.z addresses where a given port is free to bind.

    The second and third octets are random per allocator, so two test sessions on one machine
    rarely pick the same addresses; a candidate is skipped when ``port`` is taken there.
    """

    def __init__(self, seed: int | None = None) -> None:
        rng = random.Random(seed)
        self.prefix = f"127.{rng.randrange(64, 250)}.{rng.randrange(1, 250)}"
        self._next = 1
        self._lock = threading.Lock()

    @staticmethod
    def bindable(address: str, port: int) -> bool:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, port))
            except OSError:
                return False
        return True

    def allocate(self, port: int) -> str:
        with self._lock:
            while self._next < 255:
                address = f"{self.prefix}.{self._next}"
                self._next += 1
                if self.bindable(address, port):
                    return address
        raise RuntimeError(f"no free loopback address for port {port} under {self.prefix}")


def load_shim(name: str = "gqr_test_dns_shim") -> ModuleType:
    """The shim module, loaded under ``name`` (not as ``sitecustomize``: nothing is patched)."""
    spec = importlib.util.spec_from_file_location(name, SHIM_DIR / "sitecustomize.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def resolver_installed(hosts: HostsFile) -> Iterator[ModuleType]:
    """Patches this (the test) process's resolver with the hosts table while inside."""
    shim = load_shim()
    shim.install(str(hosts.path))
    try:
        yield shim
    finally:
        shim.uninstall()
