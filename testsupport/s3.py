"""A real S3 server for tests and benchmarks: MinIO, built from pinned Go modules by
testenv/build.sh (cached like the control plane), on a free loopback port with a fresh data
folder and its own root credentials."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testsupport.procs import free_port, serving, testenv_binary

REGION = "us-east-1"


def minio_binary() -> Path:
    """The cached MinIO binary (built on first use: a few minutes)."""
    return testenv_binary("minio")


@dataclass
class S3Server:
    """A running MinIO: where it listens and the credentials it accepts."""

    endpoint: str
    access_key: str
    secret_key: str
    data: Path
    log: Path

    def env(self) -> dict[str, str]:
        """What a component's pod gets from the store's Secret (and the endpoint setting)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
        }

    def fs(self) -> Any:
        """An s3fs filesystem on this server."""
        import s3fs

        return s3fs.S3FileSystem(
            key=self.access_key,
            secret=self.secret_key,
            client_kwargs={"endpoint_url": self.endpoint, "region_name": REGION},
            skip_instance_cache=True,
        )

    def bucket(self, prefix: str = "gqr") -> str:
        """A new, empty bucket; returns its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.fs().mkdir(name)
        return name


@contextmanager
def s3_server(workdir: Path) -> Iterator[S3Server]:
    """MinIO serving ``workdir/data`` until the block ends."""
    port, console = free_port(), free_port()
    data, log = workdir / "data", workdir / "minio.log"
    data.mkdir(parents=True, exist_ok=True)
    server = S3Server(
        endpoint=f"http://127.0.0.1:{port}",
        access_key="gqr-test",
        secret_key=uuid.uuid4().hex,
        data=data,
        log=log,
    )
    args = [str(minio_binary()), "server", str(data), "--quiet"]
    args += ["--address", f"127.0.0.1:{port}", "--console-address", f"127.0.0.1:{console}"]
    env = {
        "MINIO_ROOT_USER": server.access_key,
        "MINIO_ROOT_PASSWORD": server.secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    with serving(args, log, f"{server.endpoint}/minio/health/live", env):
        yield server
