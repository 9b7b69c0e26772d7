"""A real Prometheus for tests: built from pinned Go modules by testenv/build.sh (static
scrape configs only: the service-discovery plugins are left out), cached like the control
plane; started on a free loopback port scraping the targets given, every second."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from testsupport.procs import free_port, serving, testenv_binary


def prometheus_binary() -> Path:
    """The cached Prometheus binary (built on first use: a few minutes)."""
    return testenv_binary("prometheus")


@dataclass
class Prometheus:
    url: str

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of ``promql`` now (``result`` of /api/v1/query)."""
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        r.raise_for_status()
        body = r.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def targets_up(self) -> dict[str, str]:
        r = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
        return {t["labels"]["job"]: t["health"] for t in r["data"]["activeTargets"]}


@contextmanager
def prometheus(workdir: Path, jobs: dict[str, str]) -> Iterator[Prometheus]:
    """Prometheus scraping ``jobs`` (job name -> host:port, path /metrics) every second."""
    workdir.mkdir(parents=True, exist_ok=True)
    lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s", "scrape_configs:"]
    for job, target in jobs.items():
        lines += [f"  - job_name: {job}", "    static_configs:", f"      - targets: ['{target}']"]
    config = workdir / "prometheus.yml"
    config.write_text("\n".join(lines) + "\n")
    port = free_port()
    args = [
        str(prometheus_binary()),
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with serving(args, workdir / "prometheus.log", f"http://127.0.0.1:{port}/-/ready", grace_s=10):
        yield Prometheus(f"http://127.0.0.1:{port}")
