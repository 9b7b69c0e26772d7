"""``gqr logs-compact``: compact a log store's closed day folders into Parquet for the
columnar readers (``gqr_serving.logstore.compact``; the gateway also runs it hourly)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from gqr_training.cliconfig import ConfigParser


@dataclass(kw_only=True)
class LogsCompactConfig:
    """What ``gqr logs-compact`` is told."""

    root: str = field(metadata={"help": "Log store root: a folder or an fsspec URL (s3://...)."})


def make_parser() -> ConfigParser[LogsCompactConfig]:
    return ConfigParser(
        LogsCompactConfig, prog="gqr logs-compact", description=__doc__.split("\n")[0]
    )


def main(argv: list[str] | None = None) -> int:
    from gqr_serving.logstore.compact import compact, summary

    cfg = make_parser().parse_config(argv)
    print(summary(compact(cfg.root, progress=lambda line: print(line, flush=True))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
