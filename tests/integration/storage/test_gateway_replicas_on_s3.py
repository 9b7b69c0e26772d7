"""Several gateway replicas on one S3 log prefix (a real MinIO), as the operator deploys them:
one signing key from a mounted file, COR read from the s3:// artifact root. A click sent to a
replica other than the one that served the impression is accepted, and after a graceful stop
the log store holds every impression and every click exactly once."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from testsupport.artifacts import build_random_gpt2, publish_cor
from testsupport.procs import PY, free_port, start, stop_process_group, wait_http

from gqr_serving.logstore import LogReader


def test_clicks_on_any_replica_are_kept(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    bucket = s3.bucket()
    lm = build_random_gpt2(tmp_path / "lm")
    publish_cor(f"s3://{bucket}/artifacts")  # type: ignore[arg-type]
    (tmp_path / "signing-key").write_text("a-key-the-operator-made-" + "x" * 20)
    backend = {"kind": "local", "model": str(lm), "timeout_s": 60}
    arm = {"name": "stable", "weight": 1, "model_version": "v1", "backend": backend}
    (tmp_path / "routing.json").write_text(json.dumps({"arms": [arm]}))
    procs, urls = [], []
    for i in range(2):
        port = free_port()
        args = [
            PY, "-m", "gqr_serving.gateway.cli",
            "--routing-file", str(tmp_path / "routing.json"),
            "--log-root", f"s3://{bucket}/logs",
            "--cor-root", f"s3://{bucket}/artifacts",
            "--secret-key-file", str(tmp_path / "signing-key"),
            "--spool-dir", str(tmp_path / f"spool-{i}"),
            "--request-budget-s", "60", "--port", str(port),
        ]  # fmt: skip
        env = {**s3.env(), "GQR_POD_NAME": f"gateway-{i}"}
        procs.append(start(args, tmp_path / f"gateway-{i}.log", env))
        urls.append(f"http://127.0.0.1:{port}")
    served: dict[str, list[int]] = {}
    try:
        for proc, url in zip(procs, urls, strict=True):
            wait_http(f"{url}/healthz", proc, 120)
        rng = random.Random(0)
        for i in range(12):
            query = rng.choice(["what is green tea", "rome weather"])
            body = {"task": "suggestion", "query": query, "user_key": f"u{i}"}
            shown = httpx.post(f"{urls[i % 2]}/v1/recommend", json=body, timeout=60)
            assert shown.status_code == 200, shown.text
            # The random model may give fewer than 3 usable queries (the output filters drop
            # the rest): click only positions that were shown.
            n = len(shown.json()["queries"])
            iid, positions = shown.json()["impression_id"], [0, 1][:n] if i % 3 else [n - 1]
            click = {"impression_id": iid, "user_key": f"u{i}", "positions": positions}
            got = httpx.post(f"{urls[(i + 1) % 2]}/v1/feedback", json=click, timeout=30)
            assert got.status_code == 200, got.text  # the other replica knows the key
            assert got.json()["recorded"] == positions
            served[iid] = positions
    finally:
        for proc in procs:
            stop_process_group(proc, 30)  # SIGTERM: each replica flushes and uploads
    reader = LogReader(f"s3://{bucket}/logs")
    now = datetime.now(UTC)
    window = (now - timedelta(hours=1), now + timedelta(minutes=5))
    impressions = [r.impression_id for r in reader.read("impression", *window)]
    clicks = sorted((r.impression_id, r.position) for r in reader.read("click", *window))
    assert sorted(impressions) == sorted(served)
    assert clicks == sorted((iid, p) for iid, ps in served.items() for p in ps)
