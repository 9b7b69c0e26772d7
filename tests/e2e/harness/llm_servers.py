"""Stand-in for the LLM server pods (TGI containers on GPU nodes) behind their Services.

kwok marks the operator's LLM Deployments Available, but nothing serves. For each LLM
Deployment (``app.kubernetes.io/component=llm``) of the namespace, :class:`LocalLLMServers`
starts the TGI stand-in ``testsupport/tgi_standin.py`` (a real transformers model on the CPU)
on its own loopback address at the port of the Deployment's Service, and lists the Service's
DNS names in the
:class:`~tests.e2e.harness.cluster_dns.HostsFile`, so ``http://<svc>.<ns>.svc.cluster.local:8080``
(what the routing ConfigMap holds) reaches it from any process that has the DNS stand-in.

The model is the container's ``MODEL_ID`` (and ``LORA_ADAPTERS``) with the pod's volume mounts
mapped as the kubelet stand-in maps them: ``/mnt/pvc/<claim>/...`` is the claim's PV hostPath.
``MODEL_ID`` may also be a local path; hub ids and s3:// fetches (init containers) are not
stood in for: such a Deployment gets no server and ``problems`` says why. A changed model
restarts the server; a Deployment that is deleted (or scaled to 0) loses its server and names.
Only the TGI runtime is stood in for (vLLM's OpenAI API is not). Nothing is written to the
apiserver: pods stay as kwok reports them.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.harness._poller import Poller
from tests.e2e.harness.cluster_dns import HostsFile, LoopbackAllocator, service_names
from tests.e2e.harness.kubelet import tail_text
from tests.e2e.harness.volumes import VolumeError, pod_path_map
from testsupport.procs import http_ok, stop_process_group
from testsupport.tgi_standin import start_tgi_standin

LLM_SELECTOR = "app.kubernetes.io/component=llm"


class NotServable(Exception):
    """This Deployment gets no server (yet): the message says why."""


@dataclass
class LLMServer:
    """One stand-in server of one LLM Deployment."""

    deployment: str
    service: str
    address: str
    port: int
    model: Path
    adapters: list[tuple[str, Path]]
    log_path: Path
    names: list[str]
    proc: subprocess.Popen[bytes] | None = None
    ready: bool = False
    restarts: int = 0
    history: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The local base URL (the in-cluster one is ``http://<names[0]>:<port>``)."""
        return f"http://{self.address}:{self.port}"

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...], int]:
        return str(self.model), tuple((n, str(p)) for n, p in self.adapters), self.port

    def describe(self, tail_bytes: int = 2000) -> str:
        code = None if self.proc is None else self.proc.poll()
        return (
            f"--- llm {self.deployment} (svc {self.service}) {self.url} ready={self.ready} "
            f"exit={code} restarts={self.restarts}\nmodel: {self.model} adapters: {self.adapters}"
            f"\nlog: {self.log_path}\n" + tail_text(self.log_path, tail_bytes)
        )


class LocalLLMServers(Poller):
    """Serves every LLM Deployment of ``namespace`` (of one GQRDeployment when ``instance``
    names it) from a local TGI stand-in; see the module docstring.

    ``servers`` maps Deployment name -> :class:`LLMServer`; ``wait_ready()`` blocks until the
    servers are up; ``logs()`` reports servers, problems and events.
    """

    name = "local-llm-servers"

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        hosts: HostsFile,
        workdir: Path,
        *,
        instance: str | None = None,
        poll_s: float = 0.5,
        threads: int = 1,
        max_restarts: int = 2,
        allocator: LoopbackAllocator | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        from kubernetes import client

        super().__init__(poll_s)
        self.api_client = api_client
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.hosts = hosts
        self.workdir = Path(workdir)
        self.selector = LLM_SELECTOR
        if instance:
            from gqr_operator.resources.naming import label_value

            self.selector += f",app.kubernetes.io/instance={label_value(instance)}"
        self.threads = threads
        self.max_restarts = max_restarts
        self.allocator = allocator or LoopbackAllocator()
        self.env = dict(env or {})
        self.servers: dict[str, LLMServer] = {}
        self.problems: dict[str, str] = {}
        self._addresses: dict[str, str] = {}  # service -> its loopback address
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the loop

    def step(self) -> None:
        listed = self.apps.list_namespaced_deployment(self.namespace, label_selector=self.selector)
        services = [
            self.api_client.sanitize_for_serialization(s)
            for s in self.core.list_namespaced_service(self.namespace).items
        ]
        wanted: dict[str, dict[str, Any]] = {}
        for item in listed.items:
            dep = self.api_client.sanitize_for_serialization(item)
            name = dep["metadata"]["name"]
            if dep["metadata"].get("deletionTimestamp") or dep["spec"].get("replicas", 1) == 0:
                continue
            try:
                wanted[name] = self._desired(dep, services)
            except NotServable as exc:
                if self.problems.get(name) != str(exc):
                    self.note(f"deployment {name}: no server: {exc}")
                self.problems[name] = str(exc)
                wanted[name] = {}  # keep a running server while e.g. its Service is missing
            else:
                self.problems.pop(name, None)
        with self._lock:
            for name in list(self.servers):
                server = self.servers[name]
                want = wanted.get(name)
                if want is None:
                    self._stop_server(server, f"deployment {name} gone", forget=True)
                elif want and self._key(want) != server.key:
                    self._stop_server(server, f"deployment {name} changed", forget=True)
            for name, want in wanted.items():
                if want and name not in self.servers:
                    self._start(name, want)
            for server in self.servers.values():
                self._check(server)

    @staticmethod
    def _key(want: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...], int]:
        adapters = tuple((n, str(p)) for n, p in want["adapters"])
        return str(want["model"]), adapters, int(want["port"])

    def _desired(self, dep: dict[str, Any], services: list[dict[str, Any]]) -> dict[str, Any]:
        name = dep["metadata"]["name"]
        template = dep["spec"]["template"]
        pod_labels = (template.get("metadata") or {}).get("labels") or {}
        container = template["spec"]["containers"][0]
        env = {e["name"]: str(e["value"]) for e in container.get("env") or [] if "value" in e}
        if "MODEL_ID" not in env:
            raise NotServable("no MODEL_ID env: only the TGI runtime is stood in for")
        svc = next(
            (
                s
                for s in services
                if (s["spec"].get("selector") or {})
                and all(pod_labels.get(k) == v for k, v in s["spec"]["selector"].items())
            ),
            None,
        )
        if svc is None:
            raise NotServable("no Service selects its pods (yet)")
        try:
            paths = pod_path_map(
                self.api_client, self.namespace, template["spec"], container, self.workdir / name
            )
        except VolumeError as exc:
            raise NotServable(str(exc)) from exc

        def local(value: str, what: str) -> Path:
            path = paths.local(value) if value.startswith("/") else Path(value)
            if not path.exists():
                raise NotServable(f"{what} {value!r} is not a local folder (looked at {path})")
            return path

        model = local(env["MODEL_ID"], "MODEL_ID")
        if not (model / "config.json").is_file():
            raise NotServable(f"MODEL_ID folder {model} holds no config.json (yet)")
        adapters = []
        for pair in filter(None, env.get("LORA_ADAPTERS", "").split(",")):
            adapter, _, path = pair.partition("=")
            adapters.append((adapter, local(path, f"adapter {adapter}")))
        return {
            "model": model,
            "adapters": adapters,
            "service": svc["metadata"]["name"],
            "port": int(svc["spec"]["ports"][0]["port"]),
        }

    # ------------------------------------------------------------------ servers

    def _address(self, service: str, port: int) -> str:
        """The Service's own loopback address (kept for its life) where its port is free."""
        address = self._addresses.get(service)
        if address is None or not self.allocator.bindable(address, port):
            try:
                address = self.allocator.allocate(port)
            except RuntimeError as exc:  # e.g. something listens on 0.0.0.0:<port>
                raise NotServable(str(exc)) from exc
            self._addresses[service] = address
        return address

    def _start(self, name: str, want: dict[str, Any]) -> None:
        try:
            address = self._address(want["service"], want["port"])
        except NotServable as exc:
            self.problems[name] = str(exc)
            self.note(f"deployment {name}: no server: {exc}")
            return
        server = LLMServer(
            deployment=name,
            service=want["service"],
            address=address,
            port=want["port"],
            model=want["model"],
            adapters=list(want["adapters"]),
            log_path=self.workdir / name / "server.log",
            names=service_names(want["service"], self.namespace),
        )
        server.history.append(f"key {self._key(want)}")
        self._spawn(server)
        # A Service name resolves as soon as the Service exists, ready or not (ClusterIP).
        self.hosts.set(server.names, address)
        self.servers[name] = server
        self.note(f"deployment {name}: serving {server.model} at {server.url} as {server.names[0]}")

    def _spawn(self, server: LLMServer) -> None:
        server.ready = False
        server.proc = start_tgi_standin(
            server.model,
            server.address,
            server.port,
            server.log_path,
            adapters=server.adapters,
            threads=self.threads,
            env=self.env,
        )

    def _check(self, server: LLMServer) -> None:
        proc = server.proc
        if proc is None:
            return
        code = proc.poll()
        if code is not None:
            if server.restarts < self.max_restarts:
                tail = tail_text(server.log_path, 600)
                self.note(f"llm {server.deployment} exited {code}; restarting. log: {tail}")
                server.restarts += 1
                self._spawn(server)
            elif not server.history or not server.history[-1].startswith("gave up"):
                server.history.append(f"gave up after exit {code}")
                self.note(f"llm {server.deployment} exited {code}; gave up (restarts used)")
            return
        if not server.ready and http_ok(server.address, server.port, timeout=0.5):
            server.ready = True
            self.note(f"llm {server.deployment} ready at {server.url}")

    def _stop_server(self, server: LLMServer, why: str, *, forget: bool) -> None:
        self.note(f"llm {server.deployment}: stopping ({why})")
        if server.proc is not None:
            stop_process_group(server.proc)
        server.ready = False
        if forget:
            self.hosts.remove(server.names)
            self.servers.pop(server.deployment, None)

    def close(self) -> None:
        with self._lock:
            for server in list(self.servers.values()):
                self._stop_server(server, "harness stopping", forget=True)

    # ------------------------------------------------------------------ waiting, reports

    def wait_ready(self, deployments: Iterable[str] | None = None, timeout: float = 180.0) -> None:
        """Blocks until the named Deployments (default: every one seen, at least one) have a
        ready server; fails with the logs when one gave up or the time is over."""
        names = None if deployments is None else set(deployments)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                servers = dict(self.servers)
            dead = [
                s for s in servers.values() if s.history and s.history[-1].startswith("gave up")
            ]
            if dead:
                raise AssertionError(f"LLM stand-in server(s) died\n{self.logs()}")
            want = names if names is not None else set(servers)
            if want and want <= set(servers) and all(servers[n].ready for n in want):
                return
            time.sleep(0.2)
        raise AssertionError(
            f"LLM servers {names or 'any'} not ready after {timeout}s\n{self.logs()}"
        )

    def logs(self, tail_bytes: int = 2000) -> str:
        with self._lock:
            parts = [s.describe(tail_bytes) for s in self.servers.values()]
        parts += [f"--- no server for {d}: {why}" for d, why in self.problems.items()]
        parts.append(f"--- hosts {self.hosts.path}: {self.hosts.entries()}")
        parts.append(f"--- {self.name} events\n{self.events_text()}")
        return "\n".join(parts)
