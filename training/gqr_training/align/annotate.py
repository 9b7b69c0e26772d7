"""``gqr annotate``: SFT data from a teacher LLM behind an OpenAI-compatible chat API.

    gqr annotate --teacher-url http://localhost:8000 --requests reqs.jsonl --out sft.jsonl
    gqr annotate --teacher-url https://teacher.example --teacher-model qwen-72b \\
        --api-key-env TEACHER_KEY --logs /logs --window-days 14 --max-requests 2000 \\
        --out /work/annotations-3/sft.jsonl --publish /artifacts/annotations --version 3

Each request (a ``PromptRequest`` JSON line, or with ``--logs`` the distinct user queries of a
log window: ``gqr_training.align.logprompts``, the test tenth left out for the gate) is
rendered as chat messages by the universal template, sent to ``/v1/chat/completions``, read
back with the total parser and the preset's constraints; usable answers become
``{prompt, completion}`` rows (plus ``--augment`` shuffled copies). Answers that parse to no
query are counted and skipped.

Fails fast, naming the teacher's URL (and where the key came from, ``--api-key-from``), when
the teacher is unreachable, refuses the key, or does not know the model: the first request
decides. Its last stdout line is a JobResult (the bootstrap stage's ``annotate`` step); the
key itself is never printed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gqr_serving.prompt import PromptRequest, TaskPreset, enforce, parse, render_messages
from gqr_training.cliconfig import ConfigParser, at_least, validate
from gqr_training.window import RESULT_FILE_HELP, end_field, window_days_field

ANNOTATIONS_FILE = "sft.jsonl"
"""The rows' file name in a published annotations version (``sft --data`` reads it)."""


class TeacherError(RuntimeError):
    """The teacher cannot be used at all (unreachable, key refused, unknown model)."""


@dataclass
class AnnotateStats:
    requests: int = 0
    usable: int = 0
    empty: int = 0
    failed: int = 0


def ask_teacher(
    client: Any, model: str, preset: TaskPreset, request: PromptRequest, temperature: float
) -> list[str]:
    """The teacher's queries for one request, after parse + enforce (may be empty)."""
    r = client.post(
        "/v1/chat/completions",
        json={
            "model": model,
            "messages": render_messages(preset, request),
            "temperature": temperature,
        },
    )
    r.raise_for_status()
    text = r.json()["choices"][0]["message"]["content"]
    return list(enforce(preset, request, parse(preset, text)).queries)


def teacher_base(url: str) -> str:
    """The server's base URL: ``https://host/v1`` and ``https://host`` name the same API."""
    base = url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def fatal(exc: Exception, url: str, model: str, key_from: str | None) -> TeacherError | None:
    """A TeacherError when ``exc`` means no request can succeed (None for one bad answer)."""
    import httpx

    key = f"the API key from {key_from}" if key_from else "no API key"
    if isinstance(exc, httpx.TransportError):
        return TeacherError(f"teacher {url} is unreachable: {type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        if code in (401, 403):
            return TeacherError(f"teacher {url} refused {key} (HTTP {code})")
        if code == 404:
            return TeacherError(
                f"teacher {url} has no /v1/chat/completions or no model {model!r} (HTTP 404)"
            )
    return None


def annotate(
    base_url: str,
    preset: TaskPreset,
    requests: Sequence[PromptRequest],
    model: str = "teacher",
    temperature: float = 0.7,
    timeout: float = 60.0,
    api_key: str | None = None,
    key_from: str | None = None,
) -> tuple[list[list[str]], AnnotateStats]:
    """One teacher list per request (empty where the teacher failed or said nothing usable).
    Raises :class:`TeacherError` when the first request shows the teacher unusable, or any
    request has the key refused."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    stats = AnnotateStats()
    out: list[list[str]] = []
    base = teacher_base(base_url)
    with httpx.Client(base_url=base, timeout=timeout, headers=headers) as client:
        for req in requests:
            stats.requests += 1
            try:
                qs = ask_teacher(client, model, preset, req, temperature)
            except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
                err = fatal(exc, base_url, model, key_from)
                refused = isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (
                    401,
                    403,
                )
                if err is not None and (stats.requests == 1 or refused):
                    raise err from None
                stats.failed += 1
                qs = []
            stats.usable += bool(qs)
            out.append(qs)
    stats.empty = stats.requests - stats.usable - stats.failed
    return out, stats


@dataclass(kw_only=True)
class AnnotateConfig:
    """Everything ``gqr annotate`` is told: the teacher, the requests and the output."""

    teacher_url: str = field(
        metadata={"help": "Base URL of an OpenAI-compatible server (with or without /v1)."}
    )
    teacher_model: str = field(
        default="teacher", metadata={"help": "Model name sent to the server."}
    )
    requests: Path | None = field(
        default=None, metadata={"help": "PromptRequests (JSON Lines); or --logs."}
    )
    logs: str | None = field(
        default=None,
        metadata={
            "help": "Log store root: annotate the distinct user queries of the window's "
            "impressions (the fixed test tenth left out; see --window-days)."
        },
    )
    window_days: int = window_days_field()
    end: str = end_field()
    max_requests: int = field(
        default=2000,
        metadata={"help": "Requests kept from --logs (2000).", "rule": at_least(1, "a count")},
    )
    out: Path = field(metadata={"help": "Output {prompt, completion} JSON Lines."})
    publish: str | None = field(
        default=None,
        metadata={
            "help": "Annotation store (a folder, pvc://, s3://, gs://): publish --out's folder "
            f"whole as <publish>/<version> (the rows as {ANNOTATIONS_FILE}) and report its URI."
        },
    )
    version: str | None = field(
        default=None, metadata={"help": "Version reported (default: --out's folder name)."}
    )
    task: str = field(default="suggestion", metadata={"help": "Task preset (suggestion)."})
    augment: int = field(
        default=1,
        metadata={
            "help": "Shuffled extra copies per usable answer (1).",
            "rule": at_least(0, "a whole number"),
        },
    )
    temperature: float = field(
        default=0.7,
        metadata={"help": "The teacher's sampling temperature (0.7).", "rule": at_least(0)},
    )
    api_key_env: str | None = field(
        default=None, metadata={"help": "Environment variable holding the API key."}
    )
    api_key_from: str | None = field(
        default=None,
        metadata={
            "help": "Where the key comes from, named in errors (e.g. 'Secret teacher key "
            "apiKey'); never the key itself."
        },
    )
    seed: int = field(default=0, metadata={"help": "Order of the --logs requests (0)."})
    no_progress: bool = field(default=False, metadata={"help": "Accepted; prints no bar."})
    result_file: Path | None = field(default=None, metadata={"help": RESULT_FILE_HELP})

    def __post_init__(self) -> None:
        validate(self)


def make_parser() -> ConfigParser[AnnotateConfig]:
    return ConfigParser(
        AnnotateConfig,
        prog="gqr annotate",
        description="Render each request with the universal prompt, ask the teacher, keep the "
        "usable answers as {prompt, completion} JSON Lines.",
    )


def api_key(cfg: AnnotateConfig) -> str | None:
    """The key from ``--api-key-env``; an empty or missing variable fails, naming its source."""
    if not cfg.api_key_env:
        return None
    key = os.environ.get(cfg.api_key_env, "").strip()
    if not key:
        source = cfg.api_key_from or f"environment variable {cfg.api_key_env}"
        raise TeacherError(f"no API key for teacher {cfg.teacher_url}: {source} is empty or absent")
    return key


def read_requests(cfg: AnnotateConfig) -> list[PromptRequest]:
    """``--requests``, or the training prompts of the ``--logs`` window."""
    from gqr_training.align.data import read_jsonl, request_from_row

    if cfg.logs:
        from gqr_training.align.logprompts import prompts_from_logs
        from gqr_training.window import resolve_window

        start, end = resolve_window(cfg, cfg.logs)
        got = prompts_from_logs(
            cfg.logs, start, end, cfg.task, max_train=cfg.max_requests, seed=cfg.seed
        )
        return got.train
    if cfg.requests:
        return [request_from_row(r) for r in read_jsonl(cfg.requests)]
    raise ValueError("give --requests or --logs")


def run(cfg: AnnotateConfig) -> dict[str, Any]:
    """Annotate and write (publish) the rows; returns the JobResult fields."""
    from gqr_serving.prompt import load_preset
    from gqr_training.align.data import sft_examples, write_jsonl

    preset = load_preset(cfg.task)
    key = api_key(cfg)
    reqs = read_requests(cfg)
    lists, stats = annotate(
        cfg.teacher_url,
        preset,
        reqs,
        cfg.teacher_model,
        cfg.temperature,
        api_key=key,
        key_from=cfg.api_key_from or (f"${cfg.api_key_env}" if cfg.api_key_env else None),
    )
    keep = [(r, q) for r, q in zip(reqs, lists, strict=True) if q]
    summary = (
        f"annotated {stats.requests} requests at {cfg.teacher_url}: {stats.usable} usable, "
        f"{stats.empty} empty, {stats.failed} failed"
    )
    if not keep:
        raise TeacherError(summary + "; no usable answer to fine-tune on")
    rows = sft_examples(preset, [r for r, _ in keep], [q for _, q in keep], augment=cfg.augment)
    n = write_jsonl(cfg.out, rows)
    print(f"{summary}; wrote {n} rows to {cfg.out}", file=sys.stderr)
    version = cfg.version or cfg.out.parent.name
    uri = str(cfg.out.absolute())
    if cfg.publish:
        uri = publish_rows(cfg.out, cfg.publish, version)
    metrics = {"requests": stats.requests, "usable": stats.usable, "failed": stats.failed}
    return {
        "version": version,
        "artifact_uri": uri,
        "metrics": {**metrics, "rows": n},
        "message": summary,
    }


def publish_rows(out: Path, store_uri: str, version: str) -> str:
    """``out``'s folder, the rows as ``ANNOTATIONS_FILE``, published whole as ``version``."""
    from gqr_serving.storage import ArtifactStore
    from gqr_training.output import publish_once

    if out.name != ANNOTATIONS_FILE:
        out.replace(out.with_name(ANNOTATIONS_FILE))
    return publish_once(ArtifactStore.at(store_uri), out.parent, version)


def main(argv: list[str] | None = None) -> int:
    from gqr_training.jobresult import report

    cfg = make_parser().parse_config(argv)
    return report("annotate", lambda: run(cfg), cfg.result_file)


if __name__ == "__main__":
    sys.exit(main())
