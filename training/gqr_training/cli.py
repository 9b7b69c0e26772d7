"""The ``gqr`` command: one argparse dispatcher. ``gqr sim`` registers its flags below; every
other command (the demo, the tools, the pipeline steps) has its own parser, built from its
config dataclass, and runs as ``<module>.main(argv)``; each imports its heavy dependencies only
when it runs.

    gqr sim --policy annotator --days 14 --out /tmp/logs
    gqr demo --out ./gqr-demo
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

Register = Callable[[argparse._SubParsersAction], None]  # type: ignore[type-arg]


# ---- argument types shared by subcommands: errors name what was wrong and what is accepted --
def int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not an integer; expected an integer from {lo} to {hi}"
            ) from None
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"{n} is out of range; expected {lo} to {hi}")
        return n

    return parse


def iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date; expected YYYY-MM-DD, e.g. 2025-01-01"
        ) from None


def out_dir(value: str) -> Path:
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} exists and is not a folder; give a folder")
    return path


def _register_sim(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sim",
        help="Run a reference policy against the simulated world and write its logs.",
        description="Write N days of impression/click/query logs of a reference policy through "
        "the log store, and print its true CTR beside the other policy's and the oracle's.",
    )
    p.add_argument(
        "--policy", required=True, choices=("annotator", "cqr"), help="The policy that serves."
    )
    p.add_argument("--days", type=int_range(1, 366), default=14, help="Days of traffic (14).")
    p.add_argument("--out", type=out_dir, required=True, help="Log store root folder.")
    p.add_argument(
        "--impressions-per-day",
        type=int_range(1, 10_000_000),
        default=15_000,
        help="Impressions per day (15000).",
    )
    p.add_argument("--seed", type=int_range(0, 2**31 - 1), default=0, help="World seed (0).")
    p.add_argument(
        "--start-date", type=iso_date, default=date(2025, 1, 1), help="First day (2025-01-01)."
    )
    p.add_argument(
        "--task",
        default="suggestion",
        choices=("suggestion", "clarification", "hint", "completion"),
        help="Task preset the traffic is for (suggestion).",
    )
    p.add_argument(
        "--eval-requests",
        type=int_range(10, 100_000),
        default=2000,
        help="Size of the fixed request sample the three policies are compared on (2000).",
    )
    p.add_argument("--arm", default="stable", help="Arm written into the impressions (stable).")
    p.add_argument("--model-version", default=None, help="Model version field (sim-<policy>).")
    p.add_argument("--deployment", default="local", help="Deployment field (local).")
    p.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")
    p.set_defaults(func=_run_sim)


def _run_sim(args: argparse.Namespace) -> int:
    from gqr_training.sim.cli import run

    return run(args)


# Commands whose own parser (built from their config dataclass) takes every argument, `gqr
# <name> --help` included: `gqr <name> ...` runs `<module>.main(argv)`. The pipeline steps are
# what the operator's Jobs run.
TOOLS: dict[str, tuple[str, str]] = {
    "demo": (
        "gqr_training.demo",
        "Run the whole loop on the simulated world: logs, COR, CTR, SFT, iterative DPO, A/B.",
    ),
    "logs-compact": (
        "gqr_training.logs_compact",
        "Compact a log store's closed day folders into Parquet for the columnar readers.",
    ),
    "align-table": (
        "gqr_training.eval.align_table",
        "Table 3 (reduced): alignment variants, AEC and true CTR, from a finished demo.",
    ),
}
ENTRYPOINTS: dict[str, tuple[str, str]] = {
    "cor-build": ("gqr_training.cor.build", "Session logs -> versioned COR artifact + index."),
    "ctr-train": ("gqr_training.ctr.train", "Train the CTR predictor on a log window."),
    "annotate": (
        "gqr_training.align.annotate",
        "SFT data from a teacher LLM behind an OpenAI-compatible chat API.",
    ),
    "sft": ("gqr_training.align.sft", "Supervised fine-tuning on {prompt, completion} rows."),
    "dpo-iterate": ("gqr_training.align.iterate", "Iterative DPO guided by the CTR predictor."),
}
DISPATCHED = {**TOOLS, **ENTRYPOINTS}


def _register_dispatched(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, (_, summary) in DISPATCHED.items():
        sub.add_parser(name, help=summary, add_help=False)


def run_entrypoint(name: str, argv: Sequence[str]) -> int:
    import importlib

    module = importlib.import_module(DISPATCHED[name][0])
    code: int = module.main(list(argv))
    return code


# Subcommands, in help order. Add one: list it in TOOLS (a module with main(argv)), or write a
# _register_<name> function, and list it here.
SUBCOMMANDS: list[Register] = [_register_sim, _register_dispatched]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gqr", description="GQR training and simulation tools.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DISPATCHED:
        return run_entrypoint(argv[0], argv[1:])
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
