"""``cor-build``: session logs -> versioned COR artifact (+ Milvus collection) -> job result.

Examples::

    cor-build --source trec --input ../shared/data/trec-session-2012/sessiontrack2012.xml.gz \
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

import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gqr_training.cliconfig import ConfigParser
from gqr_training.cor.build_config import CORBuildConfig
from gqr_training.cor.extract import ExtractConfig, Session
from gqr_training.window import days_before


def make_parser() -> ConfigParser[CORBuildConfig]:
    return ConfigParser(CORBuildConfig, prog="cor-build", description=__doc__.split("\n")[0])


def window(cfg: CORBuildConfig) -> tuple[datetime | None, datetime | None]:
    """The log store window: ``--start``/``--end``, or ``--window-days`` ending at ``--end``."""
    if cfg.window_days is None:
        return cfg.start, cfg.end
    if cfg.start is not None:
        raise ValueError("give --start or --window-days, not both")
    return days_before(cfg.end or datetime.now(UTC), cfg.window_days)


def read_sessions(
    cfg: CORBuildConfig, start: datetime | None, end: datetime | None
) -> Iterator[Session]:
    from gqr_training.cor import sources

    if cfg.source == "logstore":
        return sources.logstore_sessions(cfg.input, start, end)
    if not Path(cfg.input).exists():
        raise FileNotFoundError(f"--input {cfg.input} does not exist")
    if cfg.source == "tsv":
        return sources.tsv_sessions(cfg.input)
    return sources.trec_sessions(cfg.input)


def build_index(cfg: CORBuildConfig, version: str, encoder: Any, queries: int) -> Any:
    """The artifact's queries encoded into a new Milvus collection; returns the index."""
    from tqdm import tqdm

    from gqr_serving.cor.artifact import load_artifact
    from gqr_serving.cor.index import MilvusQueryIndex
    from gqr_serving.cor.service import index_artifact

    assert cfg.milvus_uri, "run() refuses --index without --milvus-uri"
    index = MilvusQueryIndex(
        cfg.milvus_uri, token=cfg.milvus_token, prefix=cfg.prefix, partitions=cfg.partitions
    )
    bar = tqdm(total=queries, desc="index", file=sys.stderr, disable=cfg.no_progress)
    index_artifact(index, load_artifact(cfg.artifact_root, version), encoder, progress=bar.update)
    bar.close()
    return index


def run(cfg: CORBuildConfig) -> dict[str, Any]:
    """Do the build; return JobResult fields (raises on failure)."""
    from tqdm import tqdm

    from gqr_training.cor import sources
    from gqr_training.cor.artifact_writer import new_version, publish, write_artifact
    from gqr_training.cor.extract import ExtractStats, extract, prune

    start, end = window(cfg)
    if cfg.index and not cfg.milvus_uri:
        raise ValueError("--index needs --milvus-uri (a milvus-lite .db folder or server URI)")
    gap = cfg.max_gap_minutes * 60.0 if cfg.max_gap_minutes > 0 else None
    config = ExtractConfig(max_gap_s=gap, top_m=cfg.top_m, min_count=cfg.min_count)
    t0 = time.perf_counter()
    if cfg.source == "logstore":
        # Counted in the columnar engine: same counts, bounded memory (logstore.engine).
        stats = ExtractStats()
        rows = prune(sources.logstore_transitions(cfg.input, start, end, config, stats), config)
    else:
        sessions = tqdm(
            read_sessions(cfg, start, end),
            desc="sessions",
            unit="session",
            file=sys.stderr,
            disable=cfg.no_progress,
        )
        rows, stats = extract(sessions, config)
    extract_s = time.perf_counter() - t0
    version = cfg.version or new_version(cfg.artifact_root)
    manifest: dict[str, Any] = {
        "source": {"kind": cfg.source, "input": str(cfg.input)},
        "params": {"max_gap_s": gap, "top_m": cfg.top_m, "min_count": cfg.min_count},
        "counts": {
            **stats.metrics(),
            "pairs": len(rows),
            "known_queries": len({r[0] for r in rows}),
        },
    }
    if cfg.source == "logstore":
        manifest["source"]["window"] = [str(start), str(end)]
    encoder = None
    if cfg.index:
        from gqr_serving.cor.encoders import load_encoder

        encoder = load_encoder(cfg.encoder)
        manifest["index"] = {"encoder": encoder.name, "dim": encoder.dim, "prefix": cfg.prefix}
    uri = write_artifact(cfg.artifact_root, version, rows, manifest)
    metrics: dict[str, float] = {**manifest["counts"], "extract_s": extract_s}
    index = None
    if encoder is not None:
        t1 = time.perf_counter()
        index = build_index(cfg, version, encoder, manifest["counts"]["known_queries"])
        metrics["index_s"] = time.perf_counter() - t1
    if not cfg.no_publish:
        publish(cfg.artifact_root, version)
        if index is not None:
            index.switch(version)
            index.prune(cfg.keep_versions)
    if index is not None:
        index.close()
    return {"version": version, "artifact_uri": uri, "metrics": metrics}


def main(argv: list[str] | None = None) -> int:
    from gqr_training.jobresult import report

    cfg = make_parser().parse_config(argv)
    return report("cor-build", lambda: run(cfg), cfg.result_file)


if __name__ == "__main__":
    sys.exit(main())
