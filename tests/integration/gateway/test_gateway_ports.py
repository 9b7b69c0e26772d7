"""The gateway process with --internal-port, as the operator runs it: the traffic port serves
recommendations, clicks and probes and nothing else; /v1/stats, /metrics and /admin answer only
on the internal port (the one the NetworkPolicy opens to the operator and monitoring). A
SIGTERM stops both servers and the impressions they served are in the log store."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from testsupport.artifacts import build_random_gpt2, publish_cor
from testsupport.procs import PY, free_port, start, stop_process_group, wait_http

from gqr_serving.logstore import LogReader


def test_stats_metrics_and_admin_are_only_on_the_internal_port(tmp_path: Path) -> None:
    lm = build_random_gpt2(tmp_path / "lm")
    publish_cor(tmp_path / "artifacts")
    backend = {"kind": "local", "model": str(lm), "timeout_s": 60}
    arm = {"name": "stable", "weight": 1, "model_version": "v1", "backend": backend}
    (tmp_path / "routing.json").write_text(json.dumps({"arms": [arm]}))
    (tmp_path / "token").write_text("admin-token-0123456789abcdef")
    port, internal = free_port(), free_port()
    args = [
        PY, "-m", "gqr_serving.gateway.cli",
        "--routing-file", str(tmp_path / "routing.json"),
        "--log-root", str(tmp_path / "logs"), "--cor-root", str(tmp_path / "artifacts"),
        "--admin-token-file", str(tmp_path / "token"),
        "--request-budget-s", "60", "--stats-refresh-s", "0",
        "--port", str(port), "--internal-port", str(internal),
    ]  # fmt: skip
    proc = start(args, tmp_path / "gateway.log")
    traffic, inside = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{internal}"
    try:
        wait_http(f"{traffic}/readyz", proc, 120)
        body = {"task": "suggestion", "query": "what is green tea", "user_key": "u1"}
        shown = httpx.post(f"{traffic}/v1/recommend", json=body, timeout=60)
        assert shown.status_code == 200, shown.text
        click = {"impression_id": shown.json()["impression_id"], "user_key": "u1", "positions": [0]}
        assert httpx.post(f"{traffic}/v1/feedback", json=click, timeout=30).status_code == 200
        auth = {"authorization": "Bearer admin-token-0123456789abcdef"}
        hidden = {
            path: httpx.get(f"{traffic}{path}", headers=auth, timeout=10).status_code
            for path in ("/v1/stats", "/metrics", "/admin/routing")
        }
        served = {
            path: httpx.get(f"{inside}{path}", headers=auth, timeout=10).status_code
            for path in ("/v1/stats", "/metrics", "/admin/routing", "/readyz")
        }
        not_traffic = httpx.post(f"{inside}/v1/recommend", json=body, timeout=10).status_code
        stats = httpx.get(f"{inside}/v1/stats", params={"fresh": "true"}, timeout=10).json()
        metrics = httpx.get(f"{inside}/metrics", timeout=10).text
    finally:
        stop_process_group(proc, 30)
    assert hidden == {"/v1/stats": 404, "/metrics": 404, "/admin/routing": 404}
    assert set(served.values()) == {200}, served
    assert not_traffic == 404
    ((arm_stats),) = stats["arms"]
    assert (arm_stats["impressions"], arm_stats["clicks"]) == (1, 1)
    # Both ports' requests are counted in the one registry.
    assert 'endpoint="/v1/recommend",status="200"' in metrics
    assert 'endpoint="/v1/stats",status="200"' in metrics
    (imp,) = LogReader(tmp_path / "logs").read("impression")
    assert imp.impression_id == click["impression_id"]
