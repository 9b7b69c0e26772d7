"""A real gateway (uvicorn subprocess, a real tiny LM) in --impression-durability ack mode,
SIGKILLed under concurrent load. Restarted on the same log root and spool folder, the log store
holds every impression whose recommend got a 200 and every click whose feedback got a 200,
and /v1/stats and the training join count each of them once."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
from testsupport.artifacts import build_random_gpt2, publish_cor
from testsupport.procs import PY, free_port, kill, start, stop_process_group, wait_http

from gqr_serving.logstore import LogReader

WORKERS = 4
KILL_AFTER = 24  # acknowledged impressions before the SIGKILL


class Load:
    """Workers sending recommend then feedback (same user_key), recording what got a 200."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.impressions: set[str] = set()
        self.clicks: set[tuple[str, int]] = set()
        self.errors = 0
        self._lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(w,)) for w in range(WORKERS)]

    def _run(self, worker: int) -> None:
        i = 0
        with httpx.Client(base_url=self.url, timeout=60) as c:
            while not self.stop.is_set():
                i += 1
                user = f"user-{worker}-{i}"
                body = {"task": "suggestion", "query": "what is green tea", "user_key": user}
                try:
                    r = c.post("/v1/recommend", json=body)
                    if r.status_code != 200:
                        continue
                    iid = r.json()["impression_id"]
                    with self._lock:
                        self.impressions.add(iid)
                    click = {"impression_id": iid, "user_key": user, "positions": [0]}
                    f = c.post("/v1/feedback", json=click)
                    if f.status_code == 200:
                        with self._lock:
                            self.clicks.update((iid, p) for p in f.json()["recorded"])
                except httpx.HTTPError:
                    self.errors += 1  # the kill: no answer, nothing acknowledged


def _gateway(tmp_path: Path, lm: Path, port: int, name: str) -> tuple[object, str]:
    backend = {"kind": "local", "model": str(lm), "timeout_s": 60}
    arm = {"name": "stable", "weight": 1, "model_version": "v1", "backend": backend}
    (tmp_path / "routing.json").write_text(json.dumps({"arms": [arm]}))
    args = [
        PY, "-m", "gqr_serving.gateway.cli",
        "--routing-file", str(tmp_path / "routing.json"),
        "--log-root", str(tmp_path / "logs"),
        "--cor-root", str(tmp_path / "artifacts"),
        "--spool-dir", str(tmp_path / "spool"),
        "--impression-durability", "ack",
        "--request-budget-s", "60", "--stats-refresh-s", "0",
        "--rate-recommend-user-per-s", "0", "--rate-feedback-user-per-s", "0",
        "--port", str(port),
    ]  # fmt: skip
    proc = start(args, tmp_path / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", proc, 120)  # type: ignore[arg-type]
    return proc, url


def test_sigkill_under_load_loses_no_acknowledged_record(tmp_path: Path) -> None:
    lm = build_random_gpt2(tmp_path / "lm")
    publish_cor(tmp_path / "artifacts")
    proc, url = _gateway(tmp_path, lm, free_port(), "first")
    load = Load(url)
    try:
        for t in load.threads:
            t.start()
        end = time.monotonic() + 180
        while len(load.impressions) < KILL_AFTER and time.monotonic() < end:
            time.sleep(0.05)
        kill(proc)  # SIGKILL mid-load: requests in flight get no answer
    finally:
        load.stop.set()
        for t in load.threads:
            t.join(90)
        kill(proc)
    assert len(load.impressions) >= KILL_AFTER and load.clicks
    proc, url = _gateway(tmp_path, lm, free_port(), "second")  # same log root and spool
    try:
        stats = httpx.get(f"{url}/v1/stats", params={"fresh": "true"}, timeout=30).json()
    finally:
        stop_process_group(proc, 30)
    reader = LogReader(tmp_path / "logs")
    stored = [r.impression_id for r in reader.read("impression")]
    clicked = {(r.impression_id, r.position) for r in reader.read("click")}
    assert load.impressions <= set(stored), "an acknowledged impression was lost"
    assert load.clicks <= clicked, "an acknowledged click was lost"
    joined = {imp.impression_id: c for imp, c in reader.impressions_with_clicks()}
    assert sorted(joined) == sorted(set(stored))  # each impression id once
    assert all(0 in joined[iid] for iid, _ in load.clicks)
    (arm,) = stats["arms"]
    assert arm["impressions"] == len(set(stored))  # counted once, however often stored
    assert arm["clicks"] >= len(load.clicks)
