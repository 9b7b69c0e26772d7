"""Stand-in for the kubelet + container runtime, for Job pods only.

The test control plane has no container runtime: kwok marks pods Running and leaves pods
labelled ``testenv.gqr.dev/complete=manual`` to the test. :class:`LocalKubelet` plays the
kubelet for those pods: it runs each pod's single container as a local process (``command +
args``; console scripts resolve from this venv's bin dir, so ``gqr`` is the project's CLI) with
the container's env, its volume mounts mapped to local directories (see ``volumes.py``) and its
``terminationMessagePath`` mapped to a file. When the process exits it reports the result the
way the kubelet does, by patching the pod's status (phase Succeeded/Failed, ``terminated``
with exit code, reason and termination message); the real Job controller then marks the Job
Complete or Failed.

As the kubelet: only pods bound to a node and Running (kwok) are started, oldest first, at
most ``max_parallel`` at once; ``$(VAR)`` references in command/args/env are expanded; the
message is the last 4 KiB of the termination file, or, when that is empty, the exit code is
not 0 and ``terminationMessagePolicy`` is ``FallbackToLogsOnError``, the last 80 lines / 2 KiB
of the log; a container that cannot start (volume, missing executable) ends ``StartError``
with exit code 128; a pod deleted while running has its process group killed. Container
paths in args and env values are rewritten to the local directories (longest mount first, at
path boundaries only), each word exactly once.

What differs from a kubelet: no image (the venv's code runs, whatever ``image`` says), no
isolation or resource limits, no ``readOnly``, no probes, no restarts (Job pods use
``restartPolicy: Never``), no init containers, one container per pod, and ``env`` values from
``resourceFieldRef`` are skipped (ConfigMap/Secret refs and the downward API's ``fieldRef``
are read: a pod's name, namespace, uid, labels, annotations, node and service account). The
process env is the container's env on top of a few variables of this process (``PATH`` first
of all) and ``extra_env`` (e.g. the DNS stand-in's, see ``cluster_dns.py``); ``env_for(pod,
env)`` may then override some of the container's own values with what the cluster network
would give a pod that a local process cannot have (the JobSet stand-in maps rank 0's pod
hostname to loopback and its port to a free one, see ``jobset.py``).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.e2e.harness._poller import Poller
from tests.e2e.harness.volumes import PathMap, pod_path_map
from testsupport.procs import stop_process_group

MANUAL_SELECTOR = "testenv.gqr.dev/complete=manual"
VENV_BIN = Path(sys.executable).parent
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
# The kubelet's limits (pkg/kubelet/container): the last 4 KiB of the termination file; on
# FallbackToLogsOnError, the last 80 lines / 2 KiB of the log.
MAX_MESSAGE = 4096
MAX_LOG_MESSAGE = 2048
MAX_LOG_LINES = 80
INHERITED_ENV = (
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TOKENIZERS_PARALLELISM",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "PYTHONPATH",  # the pods run the code the test runs (a worktree, a checkout)
)
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD_KEY = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")
_FIELDS = {
    "metadata.name": ("metadata", "name"),
    "metadata.namespace": ("metadata", "namespace"),
    "metadata.uid": ("metadata", "uid"),
    "spec.nodeName": ("spec", "nodeName"),
    "spec.serviceAccountName": ("spec", "serviceAccountName"),
}
EnvFor = Callable[[dict[str, Any], Mapping[str, str]], Mapping[str, str]]


def field_value(pod: dict[str, Any], path: str) -> str | None:
    """A downward-API ``fieldRef`` of ``pod`` (None for a field the stand-in does not know)."""
    keyed = _FIELD_KEY.match(path)
    if keyed:
        return str((pod["metadata"].get(keyed.group(1)) or {}).get(keyed.group(2), ""))
    if path in _FIELDS:
        part, key = _FIELDS[path]
        return str((pod.get(part) or {}).get(key) or "")
    return None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expand_refs(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion in command/args/env ($$ escapes, unknown refs stay)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, text)


def tail_text(path: Path, max_bytes: int, max_lines: int | None = None) -> str:
    """The last ``max_bytes`` (and ``max_lines``) of a file, as text ("" when absent)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    if max_lines is not None:
        text = "\n".join(text.splitlines()[-max_lines:])
    return text


@dataclass
class PodRun:
    """One pod run by the stand-in: what it ran, where its files are, how it ended."""

    pod: str
    uid: str
    job: str
    dir: Path
    log_path: Path
    termination_path: Path
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    paths: dict[str, str] = field(default_factory=dict)
    path_map: PathMap | None = None
    container: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    error: str = ""
    reported: bool = False
    status_patch: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.exit_code is not None

    def describe(self, tail_bytes: int = 3000) -> str:
        head = (
            f"--- pod {self.pod} (job {self.job or '-'}) exit={self.exit_code} "
            f"reason={self.reason or '-'} reported={self.reported}\n"
            f"argv: {self.argv}\ncwd: {self.cwd}\nlog: {self.log_path}\n"
            f"mounts: {self.paths}\n"
        )
        if self.error:
            head += f"error: {self.error}\n"
        if self.message:
            head += f"message: {self.message[:1000]}\n"
        return head + "log tail:\n" + tail_text(self.log_path, tail_bytes)


class LocalKubelet(Poller):
    """Runs the Job pods of one namespace as local processes and reports their ends.

    ``with LocalKubelet(api_client, ns, workdir) as kubelet: ...`` (or ``start()``/``stop()``);
    ``kubelet.runs`` holds every :class:`PodRun` by pod name, ``kubelet.logs()`` a report for a
    failing test. At most ``max_parallel`` pods run at once; the others wait in creation order.
    """

    name = "local-kubelet"

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        workdir: Path,
        *,
        label_selector: str = MANUAL_SELECTOR,
        max_parallel: int = 1,
        poll_s: float = 0.5,
        extra_env: Mapping[str, str] | None = None,
        inherit_env: Iterable[str] = INHERITED_ENV,
        kill_grace_s: float = 5.0,
        env_for: EnvFor | None = None,
    ) -> None:
        from kubernetes import client

        super().__init__(poll_s)
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.label_selector = label_selector
        self.max_parallel = max(1, max_parallel)
        self.extra_env = dict(extra_env or {})
        self.inherit_env = tuple(inherit_env)
        self.kill_grace_s = kill_grace_s
        self.env_for = env_for
        self.runs: dict[str, PodRun] = {}
        self._seen: set[str] = set()
        self._queue: list[tuple[str, dict[str, Any]]] = []  # (creationTimestamp, pod)

    # ------------------------------------------------------------------ the loop

    def step(self) -> None:
        listed = self.core.list_namespaced_pod(self.namespace, label_selector=self.label_selector)
        pods = [self.api_client.sanitize_for_serialization(p) for p in listed.items]
        live = {p["metadata"]["uid"] for p in pods if not p["metadata"].get("deletionTimestamp")}
        for run in self.runs.values():
            if run.proc is not None and not run.finished and run.uid not in live:
                self.note(f"pod {run.pod} deleted while running: killing its process")
                self._kill(run)
                run.exit_code, run.reason, run.reported = 137, "Deleted", True
        self._queue = [(ts, p) for ts, p in self._queue if p["metadata"]["uid"] in live]
        for pod in pods:
            meta, status = pod["metadata"], pod.get("status") or {}
            if meta["uid"] in self._seen or meta.get("deletionTimestamp"):
                continue
            if status.get("phase") in ("Succeeded", "Failed"):
                self._seen.add(meta["uid"])  # finished before we saw it (another kubelet?)
                continue
            # Like a kubelet, run only what the scheduler bound and kwok started.
            if pod["spec"].get("nodeName") and status.get("phase") == "Running":
                self._seen.add(meta["uid"])
                self._queue.append((meta.get("creationTimestamp") or "", pod))
        self._queue.sort(key=lambda item: item[0])
        for run in list(self.runs.values()):
            if run.proc is not None and not run.finished and run.proc.poll() is not None:
                self._finish(run, run.proc.returncode)
            elif run.finished and not run.reported:
                self._patch(run)  # a failed status patch is retried each poll
        while self._queue and self._running() < self.max_parallel:
            _, pod = self._queue.pop(0)
            self._launch(pod)

    def _running(self) -> int:
        return sum(1 for r in self.runs.values() if r.proc is not None and not r.finished)

    # ------------------------------------------------------------------ start

    def _launch(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        name = meta["name"]
        pod_dir = self.workdir / name
        run = PodRun(
            pod=name,
            uid=meta["uid"],
            job=(meta.get("labels") or {}).get("job-name", ""),
            dir=pod_dir,
            log_path=pod_dir / "container.log",
            termination_path=pod_dir / "termination-log",
        )
        self.runs[name] = run
        try:
            self._prepare(run, pod)
            with open(run.log_path, "ab") as log:  # the child keeps its own descriptor
                run.proc = subprocess.Popen(
                    run.argv,
                    cwd=run.cwd,
                    env=run.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # stop() ends the whole process group
                )
        except Exception as exc:  # a volume, env or exec problem: what a runtime reports
            run.error = f"{type(exc).__name__}: {exc}"
            self.note(f"pod {name}: cannot start: {run.error}")
            self._report(run, exit_code=128, reason="StartError", message=run.error)
            return
        run.started_at = _now()
        self.note(f"pod {name}: started pid {run.proc.pid}: {' '.join(run.argv)[:300]}")

    def _prepare(self, run: PodRun, pod: dict[str, Any]) -> None:
        spec = pod["spec"]
        containers = spec.get("containers") or []
        if len(containers) != 1:
            raise ValueError(f"{len(containers)} containers: the stand-in runs exactly one")
        container = containers[0]
        run.container = container
        run.dir.mkdir(parents=True, exist_ok=True)
        paths = pod_path_map(self.api_client, self.namespace, spec, container, run.dir)
        term = container.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH
        run.termination_path.write_bytes(b"")  # the kubelet creates it empty
        paths.add(term, run.termination_path)
        run.paths = dict(paths.prefixes)
        run.path_map = paths

        own = self._container_env(container, pod)
        env = self._process_env(own, pod, paths)
        # $(VAR) expands to the container's value first; then each word is mapped once.
        command = [expand_refs(a, own) for a in container.get("command") or []]
        args = [expand_refs(a, own) for a in container.get("args") or []]
        if not command:
            raise ValueError(
                f"container {container['name']} has no command (image entrypoints are unknown here)"
            )
        argv = [paths.rewrite(a) for a in (*command, *args)]
        argv[0] = self._resolve(argv[0], env)
        run.argv = argv
        run.env = env
        workdir = container.get("workingDir")
        run.cwd = paths.local(workdir) if workdir else run.dir / "cwd"
        run.cwd.mkdir(parents=True, exist_ok=True)

    def _container_env(self, container: dict[str, Any], pod: dict[str, Any]) -> dict[str, str]:
        """The env the container defines, as the container sees it (paths not mapped yet)."""
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            values = self._env_source(source)
            prefix = source.get("prefix") or ""
            env.update({prefix + k: v for k, v in values.items()})
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = expand_refs(str(item["value"]), env)
            elif "valueFrom" in item:
                value = self._value_from(item["valueFrom"], pod)
                if value is not None:
                    env[item["name"]] = value
            else:
                env[item["name"]] = ""
        return env

    def _process_env(
        self, own: dict[str, str], pod: dict[str, Any], paths: PathMap
    ) -> dict[str, str]:
        """This process's few inherited variables, extra_env, then the container's own env
        with its paths mapped (each value rewritten exactly once)."""
        env = {k: os.environ[k] for k in self.inherit_env if k in os.environ}
        env["PATH"] = os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", os.defpath)])
        env["PYTHONUNBUFFERED"] = "1"  # the log is read while the process runs
        env["TMPDIR"] = paths.prefixes.get("/tmp") or str(self._scratch(pod) / "tmp")
        env.update(self.extra_env)
        env.update({k: paths.rewrite(v) for k, v in own.items()})
        if self.env_for is not None:
            env.update(self.env_for(pod, own))
        Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
        return env

    def _scratch(self, pod: dict[str, Any]) -> Path:
        return self.workdir / pod["metadata"]["name"]

    def _env_source(self, source: dict[str, Any]) -> dict[str, str]:
        from kubernetes.client.rest import ApiException

        try:
            if "configMapRef" in source:
                ref = source["configMapRef"]
                cm = self.core.read_namespaced_config_map(ref["name"], self.namespace)
                return dict(cm.data or {})
            if "secretRef" in source:
                ref = source["secretRef"]
                secret = self.core.read_namespaced_secret(ref["name"], self.namespace)
                return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
        except ApiException as exc:
            if exc.status != 404 or not ref.get("optional"):
                raise ValueError(f"envFrom {ref['name']}: {exc.status} {exc.reason}") from exc
        return {}

    def _value_from(self, source: dict[str, Any], pod: dict[str, Any]) -> str | None:
        from kubernetes.client.rest import ApiException

        try:
            if "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                cm = self.core.read_namespaced_config_map(ref["name"], self.namespace)
                return (cm.data or {}).get(ref["key"])
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                secret = self.core.read_namespaced_secret(ref["name"], self.namespace)
                raw = (secret.data or {}).get(ref["key"])
                return None if raw is None else base64.b64decode(raw).decode()
        except ApiException as exc:
            if exc.status != 404 or not ref.get("optional"):
                raise ValueError(f"env from {ref['name']}: {exc.status} {exc.reason}") from exc
        if "fieldRef" in source:
            return field_value(pod, source["fieldRef"]["fieldPath"])
        return None  # resourceFieldRef: skipped

    @staticmethod
    def _resolve(program: str, env: Mapping[str, str]) -> str:
        if "/" in program:
            return program
        local = VENV_BIN / program
        if local.exists():
            return str(local)
        found = shutil.which(program, path=env.get("PATH"))
        if found is None:
            raise FileNotFoundError(f'exec: "{program}": executable file not found in $PATH')
        return found

    # ------------------------------------------------------------------ end

    def _finish(self, run: PodRun, code: int) -> None:
        message = tail_text(run.termination_path, MAX_MESSAGE)
        policy = run.container.get("terminationMessagePolicy") or "File"
        if not message and code != 0 and policy == "FallbackToLogsOnError":
            message = tail_text(run.log_path, MAX_LOG_MESSAGE, MAX_LOG_LINES)
        if run.path_map is not None:  # inside a container the paths were the mount paths
            message = run.path_map.reverse(message)
        if code < 0:  # killed by a signal: what a runtime reports as 128 + signal
            code = 128 - code
        self.note(f"pod {run.pod}: exited {code}")
        self._report(
            run, exit_code=code, reason="Completed" if code == 0 else "Error", message=message
        )

    def _report(self, run: PodRun, *, exit_code: int, reason: str, message: str) -> None:
        run.exit_code, run.reason, run.message = exit_code, reason, message
        container = run.container or {"name": "", "image": ""}
        now = _now()
        ok = exit_code == 0
        status = {
            "phase": "Succeeded" if ok else "Failed",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "PodCompleted" if ok else "PodFailed",
                    "lastTransitionTime": now,
                }
            ],
            "containerStatuses": [
                {
                    "name": container.get("name", ""),
                    "image": container.get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {
                        "terminated": {
                            "exitCode": exit_code,
                            "reason": reason,
                            "message": message,
                            "startedAt": run.started_at or now,
                            "finishedAt": now,
                        }
                    },
                }
            ],
        }
        run.status_patch = {"status": status}
        self._patch(run)

    def _patch(self, run: PodRun) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self.core.patch_namespaced_pod_status(run.pod, self.namespace, run.status_patch)
            run.reported = True
        except ApiException as exc:
            self.note(f"pod {run.pod}: status patch failed: {exc.status} {exc.reason}")
            if exc.status == 404:
                run.reported = True  # gone: nothing left to report to

    def _kill(self, run: PodRun) -> None:
        if run.proc is not None:
            stop_process_group(run.proc, self.kill_grace_s)

    def close(self) -> None:
        for run in self.runs.values():
            self._kill(run)

    # ------------------------------------------------------------------ reports

    def run_of_job(self, job: str) -> list[PodRun]:
        """The runs of one Job's pods, oldest first."""
        return [r for r in list(self.runs.values()) if r.job == job]

    def logs(self, tail_bytes: int = 3000) -> str:
        """Every run's argv, mounts, exit and log tail, and the stand-in's own events."""
        parts = [r.describe(tail_bytes) for r in list(self.runs.values())]
        parts.append(f"--- {self.name} events\n{self.events_text()}")
        return "\n".join(parts)
