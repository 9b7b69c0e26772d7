"""`gqr-operator`: runs the kopf operator (standalone by default, one namespace or all)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random

import kopf


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gqr-operator",
        description="Reconciles GQRDeployment resources (gqr.dev/v1alpha1).",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=None,
        help="namespace to watch (repeatable; default: $WATCH_NAMESPACE or 'default')",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch cluster-wide")
    parser.add_argument(
        "--peering",
        default=None,
        help="kopf peering object name for HA (several replicas); default: standalone",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority; the live replica with the highest works, the others stand by "
        "(default: random, so replicas started with the same flags never tie)",
    )
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="liveness endpoint URL to serve ('' to disable)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("GQR_METRICS_PORT", "0")),
        help="serve Prometheus /metrics on this port (0: off; the chart sets 8000)",
    )
    parser.add_argument("--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    import gqr_operator.handlers  # noqa: F401  (registers the handlers)
    from gqr_operator import metrics

    metrics.serve(args.metrics_port)

    namespaces: list[str] = []
    if not args.all_namespaces:
        env = os.environ.get("WATCH_NAMESPACE", "")
        namespaces = args.namespace or [n for n in env.split(",") if n] or ["default"]
    priority = args.priority
    if priority is None:
        # kopf pauses *every* replica when two share a priority: draw one per process.
        priority = random.randint(1, 1_000_000)
    asyncio.run(
        kopf.operator(
            standalone=args.peering is None,
            peering_name=args.peering,
            priority=priority,
            clusterwide=args.all_namespaces,
            namespaces=namespaces,
            liveness_endpoint=args.liveness or None,
        )
    )


if __name__ == "__main__":
    main()
