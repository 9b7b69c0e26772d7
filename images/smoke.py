#!/usr/bin/env python3
"""Runs each built image for real with podman and checks what it does (``make images-smoke``).

- operator: the image's ``gqr-operator`` against the test control plane (testenv), the
  suggestion sample of crds/samples applied; passes when the GQRDeployment is Ready and its
  child Deployments and Services exist, owned by it.
- gateway: the image's ``gqr-gateway`` in front of the TGI stand-in (a random-init GPT-2 on the
  host, testsupport.tgi_standin) with a published COR artifact; passes when ``/v1/recommend``
  answers queries, a click is counted in ``/v1/stats`` and, after the container stops, the
  impression is in the log store on the mounted folder.
- trainer: the image's ``gqr`` runs ``sim`` (a small log window), ``ctr-train`` (a tiny model)
  and ``cor-build`` on it; passes when both report a succeeded JobResult and wrote artifacts.
- ctr-predictor: the image's KServe server on the trainer's artifact (or, without the trainer
  image, a random-init one from testsupport.artifacts); passes when V1 ``:predict`` and V2
  ``/infer`` answer a probability per query.

Containers run as ``podman --cgroup-manager=cgroupfs --runtime runc run --network host`` (see
images/engine.sh); set GQR_PODMAN to change the command. Run with the dev venv from the
repository root:  .venv/bin/python images/smoke.py [TARGET...]  (default: every image).
Prints PASS/FAIL per image with its size and exits 1 when one failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # testsupport/ and testenv/ live at the repository root
    sys.path.insert(0, str(ROOT))

PODMAN = shlex.split(
    os.environ.get("GQR_PODMAN", "podman --cgroup-manager=cgroupfs --runtime runc")
)
UID = "1000:1000"  # the images' user (images/Dockerfile)
SAMPLE = ROOT / "crds" / "samples" / "gqr.dev_v1alpha1_gqrdeployment_suggestion.yaml"
# A tiny CTR model (the shapes of tests/unit/ctr/synth.TINY), one epoch.
CTR_TINY = shlex.split(
    "--layers 1 --hidden 32 --heads 2 --intermediate 64 --embedding-size 16 --vocab-size 200"
    " --max-positions 4 --max-length 48 --batch-size 64 --lr 3e-3 --threads 1 --epochs 1"
    " --no-progress"
)
LOG_DAYS, LOG_END = 2, "2025-01-03T00:00:00+00:00"  # gqr sim's default start: 2025-01-01


class SmokeError(Exception):
    """A check failed; the message says which and what was seen."""


def image_name(target: str) -> str:
    registry = os.environ.get("REGISTRY", "ghcr.io/gqr-dev")
    version = (
        os.environ.get("VERSION")
        or tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    )
    return f"{registry}/gqr-{target}:{version}"


def _podman(*args: str, check: bool = True, timeout: float = 600) -> str:
    proc = subprocess.run(
        [*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise SmokeError(f"podman {' '.join(args[:3])} ... exited {proc.returncode}: {proc.stderr}")
    return proc.stdout


def image_size(image: str) -> int:
    return int(_podman("image", "inspect", "--format", "{{.Size}}", image).strip())


def _writable(path: Path) -> Path:
    """A folder the image's user (UID 1000) can write."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, 1000, 1000)
    return path


def _readable(path: Path) -> Path:
    """Files and folders the image's user can read (tmp folders are 0700)."""
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode | (0o555 if p.is_dir() else 0o444))
    return path


def _mounts(mounts: dict[Path, str]) -> list[str]:
    out = []
    for host, target in mounts.items():
        ro = target.endswith(":ro")
        out += ["--volume", f"{host}:{target.removesuffix(':ro')}{':ro' if ro else ''}"]
    return out


def run_once(image: str, args: Sequence[str], mounts: dict[Path, str], timeout: float) -> str:
    """Run the image to completion (its entrypoint with ``args``); its output, or SmokeError."""
    cmd = [*PODMAN, "run", "--rm", "--network", "host", "--user", UID, *_mounts(mounts)]
    proc = subprocess.run(
        [*cmd, image, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(out.splitlines()[-30:])
        raise SmokeError(f"{image} {' '.join(args[:2])} exited {proc.returncode}:\n{tail}")
    return out


class Container:
    """A detached container on the host network; stopped and removed on exit, its log kept."""

    def __init__(
        self,
        name: str,
        image: str,
        args: Sequence[str],
        mounts: dict[Path, str],
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = f"gqr-smoke-{name}-{os.getpid()}"
        env_args = [x for k, v in (env or {}).items() for x in ("--env", f"{k}={v}")]
        cmd = ["run", "--detach", "--name", self.name, "--network", "host", "--user", UID]
        _podman(*cmd, *env_args, *_mounts(mounts), image, *args)
        self.log = ""

    def running(self) -> bool:
        state = _podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.strip() == "true"

    def logs(self) -> str:
        proc = subprocess.run(
            [*PODMAN, "logs", self.name], capture_output=True, text=True, check=False
        )
        return proc.stdout + proc.stderr

    def stop(self, grace_s: int = 30) -> None:
        """SIGTERM, SIGKILL after grace_s; keeps the log."""
        _podman("stop", "--time", str(grace_s), self.name, check=False)
        self.log = self.logs()

    def remove(self) -> None:
        if not self.log:
            self.log = self.logs()
        _podman("rm", "--force", self.name, check=False)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def wait_until(what: str, check: Callable[[], Any], timeout: float, alive: Container) -> Any:
    """Poll ``check`` until it returns something truthy; SmokeError (with the container's log
    tail) when the container exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if not alive.running():
            raise SmokeError(f"{alive.name} exited while waiting for {what}:\n{_tail(alive)}")
        time.sleep(1)
    raise SmokeError(f"no {what} after {timeout:.0f}s; {alive.name}:\n{_tail(alive)}")


def _tail(c: Container, lines: int = 40) -> str:
    return "\n".join((c.log or c.logs()).splitlines()[-lines:])


def _http(method: str, url: str, **kw: Any) -> Any:
    import httpx

    try:
        return httpx.request(method, url, timeout=kw.pop("timeout", 60), **kw)
    except httpx.HTTPError:
        return None


def _ok(url: str) -> bool:
    r = _http("GET", url, timeout=3)
    return r is not None and r.status_code == 200


# ------------------------------------------------------------------------------- operator


def smoke_operator(image: str, work: Path) -> str:
    import importlib.util

    from testsupport.procs import free_port

    spec = importlib.util.spec_from_file_location("gqr_testenv", ROOT / "testenv" / "testenv.py")
    assert spec and spec.loader
    testenv = importlib.util.module_from_spec(spec)
    sys.modules["gqr_testenv"] = testenv  # its dataclasses look their module up
    spec.loader.exec_module(testenv)
    reuse = os.environ.get("GQR_TESTENV_DIR")  # a control plane already up (make testenv-up)
    if reuse and (Path(reuse) / "state.json").exists():
        state = testenv.State.load(reuse)
        if all(testenv._alive(pid) for pid in state.pids.values()):
            return _operator_against(image, work, state, free_port())
    state = testenv.up(str(work / "testenv"))
    try:
        return _operator_against(image, work, state, free_port())
    finally:
        testenv.down(state)


def _inline_kubeconfig(state: Any, out: Path) -> Path:
    """The admin kubeconfig with its certificates inline (the container sees no pki folder)."""
    import base64

    pki = Path(state.dir) / "pki"
    b64 = lambda name: base64.b64encode((pki / name).read_bytes()).decode()  # noqa: E731
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "testenv",
                "cluster": {"server": state.server, "certificate-authority-data": b64("ca.crt")},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": b64("admin.crt"),
                    "client-key-data": b64("admin.key"),
                },
            }
        ],
        "contexts": [{"name": "testenv", "context": {"cluster": "testenv", "user": "admin"}}],
        "current-context": "testenv",
    }
    out.write_text(json.dumps(doc))
    out.chmod(0o644)
    return out


def _operator_against(image: str, work: Path, state: Any, health_port: int) -> str:
    kubectl_bin = str(Path(state.bin_dir) / "kubectl")

    def kubectl(*args: str) -> str:
        cmd = [kubectl_bin, "--kubeconfig", state.kubeconfig, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise SmokeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    crds = [ROOT / "crds" / "gqr.dev_gqrdeployments.yaml"]
    crds += sorted((ROOT / "charts" / "gqr-operator" / "crds").glob("*.yaml"))
    # KServe's InferenceService CRD (the CTR predictor child), as the tests install it.
    crds += sorted((ROOT / "tests" / "fixtures" / "crds").glob("*.yaml"))
    for crd in crds:
        kubectl("apply", "--server-side", "-f", str(crd))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    ns = f"gqr-smoke-{os.getpid()}"
    kubectl("create", "namespace", ns)
    kubeconfig = _inline_kubeconfig(state, work / "kubeconfig")
    args = ["--namespace", ns, "--liveness", f"http://127.0.0.1:{health_port}/healthz"]
    mounts = {kubeconfig: "/home/gqr/.kube/config:ro"}
    env = {"KUBECONFIG": "/home/gqr/.kube/config"}
    with Container("operator", image, args, mounts, env) as op:
        wait_until(
            "operator liveness", lambda: _ok(f"http://127.0.0.1:{health_port}/healthz"), 180, op
        )
        kubectl("apply", "-n", ns, "-f", str(SAMPLE))
        name = "followup-suggestions"

        def ready() -> dict[str, Any] | None:
            obj = json.loads(kubectl("get", "-n", ns, "gqrdeployment", name, "-o", "json"))
            conds = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
            return obj if conds.get("Ready", {}).get("status") == "True" else None

        obj = wait_until(f"GQRDeployment {name} Ready", ready, 240, op)
        if obj["status"].get("phase") != "Ready":
            conds = [
                f"{c['type']}={c['status']} {c.get('reason')}: {c.get('message', '')}"
                for c in obj["status"].get("conditions", [])
            ]
            raise SmokeError(f"{name} phase {obj['status'].get('phase')}: {conds}")
        selector = f"gqr.dev/deployment={name},app.kubernetes.io/managed-by=gqr-operator"
        kinds_arg = "deployments,statefulsets,services,inferenceservices"
        listed = kubectl("get", "-n", ns, kinds_arg, "-l", selector, "-o", "json")
        children = json.loads(listed)["items"]
        kinds: dict[str, list[str]] = {}
        for child in children:
            owners = [r["uid"] for r in child["metadata"].get("ownerReferences", [])]
            if owners != [obj["metadata"]["uid"]]:
                raise SmokeError(f"{child['kind']}/{child['metadata']['name']} is not owned by it")
            kinds.setdefault(child["kind"], []).append(child["metadata"]["name"])
        if not all(kinds.get(k) for k in ("Deployment", "Service", "InferenceService")):
            raise SmokeError(f"{name} is Ready without its children: {kinds}")
        op.stop()
    return f"{name} Ready; children owned by it: " + "; ".join(
        f"{kind} {', '.join(sorted(names))}" for kind, names in sorted(kinds.items())
    )


# -------------------------------------------------------------------------------- gateway


def smoke_gateway(image: str, work: Path) -> str:
    from testsupport.artifacts import build_random_gpt2, publish_cor
    from testsupport.procs import free_port, stop_process_group, wait_http
    from testsupport.tgi_standin import start_tgi_standin

    from gqr_serving.logstore import LogReader

    model = build_random_gpt2(work / "lm")
    tgi_port, port, internal = free_port(), free_port(), free_port()
    tgi = start_tgi_standin(model, "127.0.0.1", tgi_port, work / "tgi.log")
    try:
        wait_http(f"http://127.0.0.1:{tgi_port}/health", tgi, 180)
        config = work / "config"
        config.mkdir()
        backend = {
            "kind": "tgi",
            "url": f"http://127.0.0.1:{tgi_port}",
            "transport": "http",
            "timeout_s": 60,
        }
        arm = {"name": "stable", "weight": 1, "model_version": "v1", "backend": backend}
        (config / "routing.json").write_text(json.dumps({"arms": [arm]}))
        (config / "token").write_text("admin-token-0123456789abcdef")
        publish_cor(work / "artifacts")
        logs = _writable(work / "logs")
        mounts = {
            _readable(config): "/etc/gqr:ro",
            _readable(work / "artifacts"): "/artifacts:ro",
            logs: "/var/log/gqr",
            _writable(work / "spool"): "/var/spool/gqr",
        }
        args = [
            "--routing-file", "/etc/gqr/routing.json", "--admin-token-file", "/etc/gqr/token",
            "--cor-root", "/artifacts", "--cor-encoder", "hashing:64",
            "--log-root", "/var/log/gqr", "--spool-dir", "/var/spool/gqr",
            "--request-budget-s", "60", "--stats-refresh-s", "0",
            "--host", "127.0.0.1", "--port", str(port), "--internal-port", str(internal),
        ]  # fmt: skip
        with Container("gateway", image, args, mounts) as gw:
            wait_until("gateway /readyz", lambda: _ok(f"http://127.0.0.1:{port}/readyz"), 300, gw)
            ask = {"task": "suggestion", "query": "what is green tea", "user_key": "smoke-user"}
            r = _http("POST", f"http://127.0.0.1:{port}/v1/recommend", json=ask, timeout=120)
            if r is None or r.status_code != 200:
                raise SmokeError(f"/v1/recommend answered {r and r.status_code}: {r and r.text}")
            shown = r.json()
            if not shown.get("queries"):
                raise SmokeError(f"/v1/recommend answered no queries: {shown}")
            click = {"impression_id": shown["impression_id"], "user_key": "smoke-user"}
            f = _http(
                "POST", f"http://127.0.0.1:{port}/v1/feedback", json={**click, "positions": [0]}
            )
            if f is None or f.status_code != 200:
                raise SmokeError(f"/v1/feedback answered {f and f.status_code}: {f and f.text}")
            stats = _http(
                "GET", f"http://127.0.0.1:{internal}/v1/stats", params={"fresh": "true"}
            ).json()
            counted = [(a["impressions"], a["clicks"]) for a in stats["arms"]]
            if counted != [(1, 1)]:
                raise SmokeError(f"/v1/stats counts {counted}, expected one impression and click")
            metrics = _http("GET", f"http://127.0.0.1:{internal}/metrics").text
            # The LLM was asked and answered; a random-init model's text may not parse into
            # queries, and the gateway then serves COR's (a fallback, counted by reason).
            llm_calls = _metric(metrics, 'gqr_gateway_stage_seconds_count{stage="llm"}')
            errors = _metric(metrics, "gqr_gateway_backend_errors_total")
            if llm_calls != 1 or errors:
                raise SmokeError(f"the LLM answered {llm_calls} time(s), {errors} backend error(s)")
            fallbacks = [
                line.split("{", 1)[1].split("}", 1)[0]
                for line in metrics.splitlines()
                if line.startswith("gqr_gateway_fallbacks_total{") and not line.endswith(" 0.0")
            ]
            gw.stop()
            if "Traceback" in gw.log:
                raise SmokeError(f"the gateway logged a traceback:\n{_tail(gw)}")
    finally:
        stop_process_group(tgi, 10)
    files = sorted(p.relative_to(logs) for p in logs.rglob("*.jsonl"))
    impressions = list(LogReader(logs).read("impression"))
    if [i.impression_id for i in impressions] != [shown["impression_id"]]:
        raise SmokeError(f"log store on the mounted folder holds {impressions} ({files})")
    return (
        f"/v1/recommend -> {len(shown['queries'])} queries {shown['queries']} (the LLM stand-in "
        f"answered; fallbacks: {fallbacks or 'none'}); click counted; "
        f"log files: {', '.join(map(str, files))}"
    )


def _metric(text: str, prefix: str) -> float:
    """The sum of the Prometheus samples whose name (and labels) start with ``prefix``."""
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


# -------------------------------------------------------------------------------- trainer


def _job_result(out: str, job: str) -> dict[str, Any]:
    lines = [x for x in out.splitlines() if x.startswith("{") and '"job_result"' in x]
    if not lines:
        raise SmokeError(f"{job} printed no JobResult:\n" + "\n".join(out.splitlines()[-20:]))
    result: dict[str, Any] = json.loads(lines[-1])
    if result.get("job") != job or result.get("status") != "succeeded":
        raise SmokeError(f"{job}: {result}")
    return result


def smoke_trainer(image: str, work: Path) -> str:
    data = _writable(work / "data")
    mounts = {data: "/data"}
    window = f"--end {LOG_END} --window-days {LOG_DAYS}"
    sim = f"sim --policy cqr --days {LOG_DAYS} --impressions-per-day 200 --eval-requests 10"
    run_once(image, shlex.split(f"{sim} --no-progress --out /data/logs"), mounts, 600)
    train = f"ctr-train --logs /data/logs --out /data/ctr {window} --version v1"
    ctr = _job_result(run_once(image, [*shlex.split(train), *CTR_TINY], mounts, 900), "ctr-train")
    build = f"cor-build --source logstore --input /data/logs {window}"
    build += " --artifact-root /data/artifacts --version v1 --no-progress"
    cor = _job_result(run_once(image, shlex.split(build), mounts, 600), "cor-build")
    if not (data / "ctr" / "v1").is_dir():
        raise SmokeError(f"ctr-train reported {ctr['artifact_uri']} but /data/ctr/v1 is missing")
    current = (data / "artifacts" / "cor" / "CURRENT").read_text().strip()
    if current != "v1":
        raise SmokeError(f"cor-build published {current!r}, expected v1")
    return (
        f"ctr-train auc {ctr['metrics']['auc']:.3f} on {ctr['metrics']['n']:.0f} shown queries; "
        f"cor-build {cor['metrics']['pairs']:.0f} pairs, CURRENT={current}"
    )


# -------------------------------------------------------------------------- ctr-predictor


def smoke_ctr_predictor(image: str, work: Path) -> str:
    from testsupport.procs import free_port

    trained = work.parent / "trainer" / "data" / "ctr" / "v1"
    if trained.is_dir():
        artifact, origin = trained, "the trainer image's ctr-train artifact"
    else:
        from testsupport.artifacts import build_ctr_artifact

        artifact, origin = build_ctr_artifact(work / "ctr"), "a random-init artifact"
    port, grpc = free_port(), free_port()
    args = ["--model_name", "ctr", "--model_dir", "/mnt/models", "--http_port", str(port),
            "--grpc_port", str(grpc), "--threads", "1"]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with Container("ctr-predictor", image, args, {_readable(artifact): "/mnt/models:ro"}) as srv:
        wait_until("/v1/models/ctr", lambda: _ok(f"{base}/v1/models/ctr"), 300, srv)
        pairs = [
            ("paris price", ["paris tips", "paris history", "tokyo price"]),
            ("what is green tea", ["green tea benefits", "matcha", "rome hotels"]),
        ]
        instances = [{"query": q, "queries": qs} for q, qs in pairs]
        v1 = _http("POST", f"{base}/v1/models/ctr:predict", json={"instances": instances})
        if v1 is None or v1.status_code != 200:
            raise SmokeError(f"V1 :predict answered {v1 and v1.status_code}: {v1 and v1.text}")
        preds = v1.json()["predictions"]
        probs = [p for pred in preds for p in pred["p"]]
        if len(preds) != 2 or len(probs) != 6 or not all(0 < p < 1 for p in probs):
            raise SmokeError(f"V1 predictions: {preds}")
        inputs = [
            {"name": "query", "shape": [2], "datatype": "BYTES", "data": [q for q, _ in pairs]},
            {
                "name": "queries",
                "shape": [2, 3],
                "datatype": "BYTES",
                "data": [x for _, qs in pairs for x in qs],
            },
        ]
        v2 = _http("POST", f"{base}/v2/models/ctr/infer", json={"inputs": inputs})
        if v2 is None or v2.status_code != 200:
            raise SmokeError(f"V2 /infer answered {v2 and v2.status_code}: {v2 and v2.text}")
        outputs = {o["name"]: o for o in v2.json()["outputs"]}
        if outputs.get("p", {}).get("shape") != [2, 3]:
            raise SmokeError(f"V2 outputs: {outputs}")
        if outputs["p"]["data"] != [round(p, 6) for p in probs] and not all(
            abs(a - b) < 1e-5 for a, b in zip(outputs["p"]["data"], probs, strict=True)
        ):
            raise SmokeError(f"V2 p {outputs['p']['data']} differs from V1 {probs}")
        srv.stop()
    return f"served {origin}: V1 and V2 agree, p = {[round(p, 3) for p in probs]}"


SMOKES: dict[str, Callable[[str, Path], str]] = {
    "operator": smoke_operator,
    "gateway": smoke_gateway,
    "trainer": smoke_trainer,  # before ctr-predictor, which serves what it trained
    "ctr-predictor": smoke_ctr_predictor,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help=f"images to run (default: {' '.join(SMOKES)})")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    unknown = set(args.targets) - set(SMOKES)
    if unknown:
        parser.error(f"no smoke for {sorted(unknown)}; images: {' '.join(SMOKES)}")
    if shutil.which(PODMAN[0]) is None:
        print(f"images/smoke.py: {PODMAN[0]} is missing: run images/engine.sh", file=sys.stderr)
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="gqr-image-smoke-"))
    results = []
    for target in [t for t in SMOKES if t in (args.targets or SMOKES)]:
        image = image_name(target)
        t0 = time.monotonic()
        print(f"--- {target}: {image}", flush=True)
        try:
            size = image_size(image)
        except SmokeError:
            results.append((target, False, f"{image} is not built: run `make images`", 0))
            print(f"FAIL {target}: {results[-1][2]}", flush=True)
            continue
        try:
            (root / target).mkdir()
            detail = SMOKES[target](image, root / target)
            ok = True
        except SmokeError as exc:
            ok, detail = False, str(exc)
        except Exception:  # the smoke itself broke: say where
            ok, detail = False, traceback.format_exc()
        seconds = time.monotonic() - t0
        results.append((target, ok, detail, size))
        verdict = "PASS" if ok else "FAIL"
        print(f"{verdict} {target} ({size / 1e6:.0f} MB, {seconds:.0f}s): {detail}", flush=True)
    print("--- summary")
    for target, ok, _, size in results:
        verdict = "PASS" if ok else "FAIL"
        print(f"  {verdict}  {target:14} {size / 1e6:8.0f} MB  {image_name(target)}")
    if args.keep:
        print(f"work folder kept: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if results and all(ok for _, ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
