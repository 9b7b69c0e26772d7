"""100 GQRDeployments applied at once against the real test control plane.

Measures: time until all are Ready, apiserver requests per reconcile pass (from the operator's
own /metrics), operator peak RSS, and idle CPU once everything has settled. Prints a final JSON
line. Reuses a running control plane when GQR_TESTENV_DIR is set, else starts one.

    .venv/bin/python benchmarks/bench_operator_scale.py --count 100 --idle-seconds 30
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    from kubernetes import client, config
    from tests.testenv_fixtures import install_crds, testenv_mod

    started_env = None
    state_dir = os.environ.get("GQR_TESTENV_DIR")
    if state_dir:
        state = testenv_mod.State.load(state_dir)
    else:
        state = started_env = testenv_mod.up()
    cfg = client.Configuration()
    config.load_kube_config(config_file=state.kubeconfig, client_configuration=cfg)
    api = client.ApiClient(cfg)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    install_crds(api)  # the same CRDs the tests install, KServe's stand-in included
    ns = f"bench-{int(time.time())}"
    core.create_namespace({"metadata": {"name": ns}})
    port = _free_port()
    log = Path(tempfile.mkdtemp()) / "operator.log"
    env = {**os.environ, "KUBECONFIG": state.kubeconfig, "GQR_TICK_SECONDS": "10"}
    with open(log, "wb") as fh:
        op = subprocess.Popen(
            [sys.executable, "-m", "gqr_operator.cli", "-n", ns, "--liveness", "",
             "--metrics-port", str(port)],
            env=env, stdout=fh, stderr=fh,
        )  # fmt: skip
    proc = psutil.Process(op.pid)
    peak = 0
    try:
        time.sleep(3)
        sample = yaml.safe_load(
            (ROOT / "crds/samples/gqr.dev_v1alpha1_gqrdeployment_suggestion.yaml").read_text()
        )
        t0 = time.monotonic()
        for i in range(args.count):
            doc: dict[str, Any] = copy.deepcopy(sample)
            doc["metadata"] = {"name": f"gqr-{i:03d}"}
            custom.create_namespaced_custom_object("gqr.dev", "v1alpha1", ns, "gqrdeployments", doc)
        ready_at = None
        while time.monotonic() - t0 < args.timeout:
            peak = max(peak, proc.memory_info().rss)
            items = custom.list_namespaced_custom_object(
                "gqr.dev", "v1alpha1", ns, "gqrdeployments"
            )["items"]
            ready = sum(
                any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (o.get("status") or {}).get("conditions", [])
                )
                for o in items
            )
            print(f"\r{ready}/{args.count} Ready after {time.monotonic() - t0:.0f}s", end="",
                  file=sys.stderr)  # fmt: skip
            if ready == args.count:
                ready_at = time.monotonic() - t0
                break
            time.sleep(1)
        print(file=sys.stderr)
        reconciles = _metric(port, "gqr_operator_reconciles_total")
        requests = _metric(port, "gqr_operator_api_requests_total")
        writes = _metric(port, "gqr_operator_child_writes_total")
        cpu0, w0 = proc.cpu_times(), time.monotonic()
        time.sleep(args.idle_seconds)
        peak = max(peak, proc.memory_info().rss)
        cpu1, w1 = proc.cpu_times(), time.monotonic()
        idle_cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (w1 - w0)
        idle_reconciles = _metric(port, "gqr_operator_reconciles_total") - reconciles
        idle_writes = _metric(port, "gqr_operator_child_writes_total") - writes
        result = {
            "benchmark": "operator_scale",
            "count": args.count,
            "all_ready_s": round(ready_at, 1) if ready_at else None,
            "reconciles": int(reconciles),
            "api_requests_per_reconcile": round(requests / max(reconciles, 1), 1),
            "peak_rss_mib": round(peak / 2**20, 1),
            "idle_cpu_fraction_of_one_core": round(idle_cpu, 3),
            "idle_reconciles": int(idle_reconciles),
            "idle_child_writes": int(idle_writes),
            "tick_seconds": 10,
        }
        print(json.dumps(result))
    finally:
        op.terminate()
        op.wait(20)
        core.delete_namespace(ns)
        if started_env is not None:
            testenv_mod.down(started_env)


if __name__ == "__main__":
    main()
