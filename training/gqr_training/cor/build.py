"""``cor-build``: session logs -> versioned COR artifact (+ Milvus collection) -> job result.

Examples::

    cor-build --source trec --input /work/shared/data/trec-session-2012/sessiontrack2012.xml.gz \
        --artifact-root artifacts
    cor-build --source logstore --input logs/ --start 2025-01-01 --end 2025-01-15 \
        --artifact-root artifacts --index --milvus-uri artifacts/cor/milvus.db
    cor-build --source tsv --input sessions.tsv --artifact-root artifacts --max-gap-minutes 0
    cor-build --source logstore --input /logs --window-days 14 --artifact-root /artifacts \
        --version run-1 --index --milvus-uri http://milvus:19530 --result-file /dev/termination-log

The last stdout line is the :class:`gqr_serving.records.JobResult` JSON; progress goes to
stderr. Exit status 0 on success, 1 on failure (the job result then says why).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gqr_training.cor.extract import ExtractConfig, Session
from gqr_training.window import add_result_file_arg, days_before

SOURCES = ("logstore", "tsv", "trec")


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cor-build", description=__doc__.split("\n")[0])
    p.add_argument("--source", choices=SOURCES, required=True, help="Session log format.")
    p.add_argument("--input", required=True, help="Log store root, TSV file, or TREC XML(.gz).")
    p.add_argument("--start", type=_utc, help="Log store window start (ISO 8601, UTC).")
    p.add_argument("--end", type=_utc, help="Log store window end, exclusive (ISO 8601, UTC).")
    p.add_argument(
        "--window-days",
        type=int,
        default=None,
        help="Log store window of this many days ending at --end (default: now); instead of "
        "--start.",
    )
    p.add_argument("--artifact-root", required=True, type=Path, help="Writes <root>/cor/<ver>/.")
    p.add_argument("--version", help="Version name (default: vYYYYmmddTHHMMSSZ, UTC now).")
    p.add_argument(
        "--max-gap-minutes",
        type=float,
        default=30.0,
        help="Split sessions on gaps longer than this; 0 disables splitting (default 30).",
    )
    p.add_argument("--top-m", type=int, default=20, help="Successors kept per query (20).")
    p.add_argument("--min-count", type=int, default=1, help="Minimum pair count kept (1).")
    p.add_argument("--no-publish", action="store_true", help="Write, but leave CURRENT as is.")
    p.add_argument("--index", action="store_true", help="Also build and switch the Milvus index.")
    p.add_argument("--milvus-uri", help="milvus-lite .db folder or server URI (with --index).")
    p.add_argument(
        "--milvus-token",
        default=os.environ.get("MILVUS_TOKEN", ""),
        help="Milvus token (user:password or API key; default: $MILVUS_TOKEN).",
    )
    p.add_argument(
        "--collection-prefix",
        "--prefix",
        dest="prefix",
        default="gqr_cor",
        help="Milvus collection/alias prefix, one per deployment sharing a Milvus (gqr_cor); "
        "collections are <prefix>__<version>. The operator passes gqr_<namespace>_<name>_<hash>.",
    )
    p.add_argument("--encoder", default="minilm", help="minilm | hashing[:DIM] | model folder.")
    p.add_argument(
        "--partitions",
        type=_partitions,
        default=None,
        help="k-means partitions of the Milvus collection; searches visit the nearest few "
        "(default auto: none below 8,000 known queries, then one per 1,500, at most 256; "
        "0 = none).",
    )
    p.add_argument("--keep-versions", type=int, default=2, help="Milvus versions kept (2).")
    p.add_argument("--no-progress", action="store_true", help="Hide the progress bars.")
    add_result_file_arg(p)
    return p


def _partitions(text: str) -> int | None:
    from gqr_serving.cor.index import MAX_PARTITIONS

    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_PARTITIONS:
        raise argparse.ArgumentTypeError(
            f"--partitions {text!r}: expected auto or a whole number 0-{MAX_PARTITIONS}"
        )
    return value


def _utc(text: str) -> datetime:
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def read_sessions(args: argparse.Namespace) -> Iterator[Session]:
    from gqr_training.cor import sources

    if args.source == "logstore":
        return sources.logstore_sessions(args.input, args.start, args.end)
    if not Path(args.input).exists():
        raise FileNotFoundError(f"--input {args.input} does not exist")
    if args.source == "tsv":
        return sources.tsv_sessions(args.input)
    return sources.trec_sessions(args.input)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Do the build; return JobResult fields (raises on failure)."""
    from tqdm import tqdm

    from gqr_serving.cor.artifact import load_artifact
    from gqr_training.cor.artifact_writer import new_version, publish, write_artifact
    from gqr_training.cor.extract import extract

    if args.window_days is not None:
        if args.start is not None:
            raise ValueError("give --start or --window-days, not both")
        args.start, args.end = days_before(args.end or datetime.now(UTC), args.window_days)
    if args.index and not args.milvus_uri:
        raise ValueError("--index needs --milvus-uri (a milvus-lite .db folder or server URI)")
    gap = args.max_gap_minutes * 60.0 if args.max_gap_minutes > 0 else None
    config = ExtractConfig(max_gap_s=gap, top_m=args.top_m, min_count=args.min_count)
    t0 = time.perf_counter()
    quiet = getattr(args, "no_progress", False)
    sessions = tqdm(
        read_sessions(args), desc="sessions", unit="session", file=sys.stderr, disable=quiet
    )
    rows, stats = extract(sessions, config)
    extract_s = time.perf_counter() - t0
    version = args.version or new_version(args.artifact_root)
    manifest: dict[str, Any] = {
        "source": {"kind": args.source, "input": str(args.input)},
        "params": {"max_gap_s": gap, "top_m": args.top_m, "min_count": args.min_count},
        "counts": {
            **stats.metrics(),
            "pairs": len(rows),
            "known_queries": len({r[0] for r in rows}),
        },
    }
    if args.source == "logstore":
        manifest["source"]["window"] = [str(args.start), str(args.end)]
    encoder = None
    if args.index:
        from gqr_serving.cor.encoders import load_encoder

        encoder = load_encoder(args.encoder)
        manifest["index"] = {"encoder": encoder.name, "dim": encoder.dim, "prefix": args.prefix}
    folder = write_artifact(args.artifact_root, version, rows, manifest)
    metrics: dict[str, float] = {**manifest["counts"], "extract_s": extract_s}
    index = None
    if encoder is not None:
        from gqr_serving.cor.index import MilvusQueryIndex
        from gqr_serving.cor.service import index_artifact

        t1 = time.perf_counter()
        index = MilvusQueryIndex(
            args.milvus_uri, token=args.milvus_token, prefix=args.prefix, partitions=args.partitions
        )
        bar = tqdm(
            total=manifest["counts"]["known_queries"], desc="index", file=sys.stderr, disable=quiet
        )
        index_artifact(
            index, load_artifact(args.artifact_root, version), encoder, progress=bar.update
        )
        bar.close()
        metrics["index_s"] = time.perf_counter() - t1
    if not args.no_publish:
        publish(args.artifact_root, version)
        if index is not None:
            index.switch(version)
            index.prune(args.keep_versions)
    if index is not None:
        index.close()
    return {"version": version, "artifact_uri": str(folder.absolute()), "metrics": metrics}


def main(argv: list[str] | None = None) -> int:
    from gqr_training.jobresult import report

    args = make_parser().parse_args(argv)
    return report("cor-build", lambda: run(args), args.result_file)


if __name__ == "__main__":
    sys.exit(main())
