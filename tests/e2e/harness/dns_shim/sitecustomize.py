"""Stand-in for cluster DNS (CoreDNS + the pod's resolv.conf) in a local process.

There is no cluster DNS (and no kube-proxy) on the test control plane, so a Service name such
as ``followup-llm-initial.ns.svc.cluster.local`` resolves nowhere. The e2e harness puts this
directory first on ``PYTHONPATH`` of the processes it starts (``HostsFile.env()``); Python's
``site`` then imports this ``sitecustomize``, which patches ``socket.getaddrinfo`` (used by
asyncio/aiohttp, anyio/httpx and ``socket.create_connection``), ``gethostbyname`` and, when
uvloop is installed, ``uvloop.Loop.getaddrinfo`` (uvicorn runs the gateway on uvloop, whose
resolver is libuv's, not ``socket``'s) so the
names in the JSON file at ``$GQR_TEST_HOSTS_FILE`` resolve to their loopback address
(``{"name": "127.0.0.5"}``; only the address: anyio/httpx connect to the URL's port whatever
getaddrinfo returns, so a Service keeps its port on its own address). The file is re-read
whenever its identity (inode, mtime, size) changes; other names resolve as usual.

Not covered: a uvloop ``create_connection``/``open_connection`` given a host name (it resolves
inside libuv); aiohttp and anyio resolve first through ``getaddrinfo`` and connect to the IP.
Any other ``sitecustomize`` further along ``sys.path`` is still run. The harness also loads this
file under another module name to patch the test process itself (``resolver_installed``).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import socket
import sys
import threading
from typing import Any

ENV = "GQR_TEST_HOSTS_FILE"
_HERE = os.path.dirname(os.path.abspath(__file__))
_lock = threading.Lock()
_state: dict[str, Any] = {"path": None, "key": None, "hosts": {}, "orig": None}


def _hosts() -> dict[str, str]:
    path = _state["path"]
    try:
        st = os.stat(path)
    except OSError:
        return dict(_state["hosts"])
    key = (st.st_ino, st.st_mtime_ns, st.st_size)
    with _lock:
        if key != _state["key"]:
            try:
                with open(path, encoding="utf-8") as fh:
                    raw = json.load(fh)
            except (OSError, ValueError):
                return dict(_state["hosts"])  # mid-write or broken: keep the last good table
            table = {str(k).lower().rstrip("."): str(v) for k, v in raw.items()}
            _state["hosts"], _state["key"] = table, key
        return dict(_state["hosts"])


def lookup(host: Any) -> str | None:
    """The address of a listed name, else None."""
    if isinstance(host, bytes | bytearray):
        host = bytes(host).decode("ascii", "replace")
    if not isinstance(host, str) or not host:
        return None
    return _hosts().get(host.lower().rstrip("."))


def _getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> Any:
    ip = lookup(host)
    orig = _state["orig"]["getaddrinfo"]
    if ip is None:
        return orig(host, port, family, type, proto, flags)
    return orig(ip, port, family, type, proto, flags & ~socket.AI_CANONNAME)


def _gethostbyname(host: str) -> str:
    ip = lookup(host)
    return ip if ip else _state["orig"]["gethostbyname"](host)  # type: ignore[no-any-return]


def _gethostbyname_ex(host: str) -> tuple[str, list[str], list[str]]:
    ip = lookup(host)
    if ip is None:
        return _state["orig"]["gethostbyname_ex"](host)  # type: ignore[no-any-return]
    return host, [], [ip]


def _patch_uvloop() -> Any:
    """Wrap uvloop's resolver (a Python subclass of the Cython loop: its attribute can be set);
    returns the original method, or None without uvloop."""
    try:
        import uvloop
    except ImportError:
        return None
    orig = uvloop.Loop.getaddrinfo

    async def getaddrinfo(
        self: Any, host: Any, port: Any, *, family: int = 0, type: int = 0, proto: int = 0,
        flags: int = 0,
    ) -> Any:  # fmt: skip
        ip = lookup(host)
        return await orig(
            self, ip or host, port, family=family, type=type, proto=proto, flags=flags
        )

    uvloop.Loop.getaddrinfo = getaddrinfo
    return orig


def install(path: str) -> None:
    """Resolve the names in the JSON file at ``path`` (patches the ``socket`` module)."""
    with _lock:
        if _state["orig"] is None:
            _state["orig"] = {
                "getaddrinfo": socket.getaddrinfo,
                "gethostbyname": socket.gethostbyname,
                "gethostbyname_ex": socket.gethostbyname_ex,
                "uvloop": _patch_uvloop(),
            }
        _state["path"], _state["key"], _state["hosts"] = path, None, {}
    socket.getaddrinfo = _getaddrinfo
    socket.gethostbyname = _gethostbyname
    socket.gethostbyname_ex = _gethostbyname_ex


def uninstall() -> None:
    """Put the original resolver functions back."""
    with _lock:
        orig, _state["orig"] = _state["orig"], None
    if orig is not None:
        socket.getaddrinfo = orig["getaddrinfo"]
        socket.gethostbyname = orig["gethostbyname"]
        socket.gethostbyname_ex = orig["gethostbyname_ex"]
        if orig["uvloop"] is not None:
            import uvloop

            uvloop.Loop.getaddrinfo = orig["uvloop"]


def _chain() -> None:
    """Run the sitecustomize this one shadows, if any."""
    others = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is not None and spec.loader is not None and spec.origin != os.path.abspath(__file__):
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


if __name__ == "sitecustomize":
    if os.environ.get(ENV):
        install(os.environ[ENV])
    _chain()
