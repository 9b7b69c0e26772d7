"""``gqr-gateway``: serve the gateway with uvicorn.

    gqr-gateway --log-root /var/log/gqr --routing-file /etc/gqr/routing.yaml \
        --cor-root /artifacts --milvus-uri http://milvus:19530 --ctr-url http://ctr:8080 \
        --admin-token-file /etc/gqr/admin-token --host 0.0.0.0 --port 8000

Every flag also reads ``GQR_GATEWAY_<NAME>`` (``--help`` lists them).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Sequence
from typing import Any


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    from gqr_serving.gateway.app import create_app
    from gqr_serving.gateway.settings import GatewaySettings, SettingsError

    try:
        settings = GatewaySettings.from_sources(sys.argv[1:] if argv is None else argv)
    except SettingsError as exc:
        print(f"gqr-gateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        app = create_app(settings)
    except (OSError, ValueError) as exc:
        print(f"gqr-gateway: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    tune_for_latency()
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                app, host=settings.host, port=settings.port, log_level=settings.log_level
            )
        )
    ]
    if app.state.internal is not None:  # its routes share the app's Gateway (started by it)
        config = uvicorn.Config(
            app.state.internal,
            host=settings.host,
            port=settings.internal_port,
            log_level=settings.log_level,
            lifespan="off",
        )
        servers.append(uvicorn.Server(config))
    asyncio.run(_serve(servers))


async def _serve(servers: list[Any]) -> None:
    """Serve until the first server stops (a signal stops all: uvicorn's handlers are set per
    server, so every one sees it), then stop the others."""
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for s in servers:
        s.should_exit = True
    await asyncio.gather(*tasks)


def tune_for_latency() -> None:
    """Process settings for a latency-bound server (see benchmarks/bench_gateway.py).

    The app's long-lived objects (modules, routes, pydantic schemas) are frozen out of the
    garbage collector, so full collections stop walking them during requests; and a thread
    holding the GIL (impression sink, COR and click-writer pools) hands it back to the event
    loop after 1 ms instead of Python's default 5 ms.
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.001)


if __name__ == "__main__":
    main()
