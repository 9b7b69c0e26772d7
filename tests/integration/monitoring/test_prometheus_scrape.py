"""A real Prometheus scrapes the operator and a gateway, as the chart's ServiceMonitor and
PodMonitor set it up: the operator's per-GQRDeployment series reach it, and the per-arm CTR it
records from the gateway's internal port matches the gateway's own /v1/stats."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client
from tests.kube_helpers import GROUP, PLURAL, VERSION, gqrdeployment, wait_for
from tests.unit.operator.cases import MINIMAL
from testsupport.artifacts import build_random_gpt2, publish_cor
from testsupport.procs import PY, free_port, start, stop_process_group, wait_http
from testsupport.prometheus import prometheus


def _gateway(tmp_path: Path) -> tuple[Any, str, str]:
    lm = build_random_gpt2(tmp_path / "lm")
    publish_cor(tmp_path / "artifacts")
    backend = {"kind": "local", "model": str(lm), "timeout_s": 60}
    arms = [
        {"name": name, "weight": 50, "model_version": version, "backend": backend}
        for name, version in (("stable", "v1"), ("canary", "v2"))
    ]
    (tmp_path / "routing.json").write_text(json.dumps({"arms": arms}))
    port, internal = free_port(), free_port()
    args = [
        PY, "-m", "gqr_serving.gateway.cli",
        "--routing-file", str(tmp_path / "routing.json"),
        "--log-root", str(tmp_path / "logs"), "--cor-root", str(tmp_path / "artifacts"),
        "--request-budget-s", "60", "--stats-refresh-s", "0",
        "--port", str(port), "--internal-port", str(internal),
    ]  # fmt: skip
    proc = start(args, tmp_path / "gateway.log")
    wait_http(f"http://127.0.0.1:{port}/readyz", proc, 120)
    return proc, f"http://127.0.0.1:{port}", f"127.0.0.1:{internal}"


def _traffic(url: str, n: int) -> None:
    rng = random.Random(3)
    for i in range(n):
        user = f"user-{i}"
        body = {"task": "suggestion", "query": "what is green tea", "user_key": user}
        shown = httpx.post(f"{url}/v1/recommend", json=body, timeout=60)
        assert shown.status_code == 200, shown.text
        if rng.random() < 0.4:
            click = {
                "impression_id": shown.json()["impression_id"],
                "user_key": user,
                "positions": [0],
            }
            assert httpx.post(f"{url}/v1/feedback", json=click, timeout=30).status_code == 200


def test_prometheus_records_the_operator_and_the_gateway(
    tmp_path: Path, testenv: Any, kube_client: Any, namespace: str, crds: list[str]
) -> None:
    operator_port = free_port()
    env = {**os.environ, "KUBECONFIG": testenv.kubeconfig}
    operator = start(
        [PY, "-m", "gqr_operator.cli", "--namespace", namespace, "--liveness", "",
         "--metrics-port", str(operator_port)],
        tmp_path / "operator.log",
        env,
    )  # fmt: skip
    gateway, url, internal = _gateway(tmp_path)
    try:
        client.CustomObjectsApi(kube_client).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, gqrdeployment("watched", MINIMAL)
        )
        _traffic(url, 40)
        jobs = {"operator": f"127.0.0.1:{operator_port}", "gateway": internal}
        with prometheus(tmp_path / "prometheus", jobs) as prom:
            want = httpx.get(f"http://{internal}/v1/stats", params={"fresh": "true"}, timeout=10)
            stats = {a["arm"]: a for a in want.json()["arms"]}

            def scraped() -> dict[str, float] | None:
                rows = prom.query(
                    "sum by (arm) (gqr_gateway_clicks_total) / "
                    "sum by (arm) (gqr_gateway_impressions_total)"
                )
                got = {r["metric"]["arm"]: float(r["value"][1]) for r in rows}
                return got if set(got) == set(stats) else None

            ctr = wait_for(scraped, "per-arm CTR in Prometheus", timeout=60)
            phase = wait_for(
                lambda: prom.query('gqr_deployment_phase{name="watched"} == 1'),
                "the operator's per-deployment phase in Prometheus",
                timeout=60,
            )
            up = prom.targets_up()
    finally:
        stop_process_group(gateway, 30)
        stop_process_group(operator, 30)
    assert up == {"operator": "up", "gateway": "up"}
    assert sum(a["impressions"] for a in stats.values()) == 40
    for arm, row in stats.items():
        assert abs(ctr[arm] - row["ctr"]) < 1e-9, (arm, ctr[arm], row)
    assert phase[0]["metric"]["namespace"] == namespace
