"""Stand-in for the TGI (text-generation-inference) container of an LLM server Deployment.

TGI needs a GPU and a container runtime; this serves the same HTTP API subset from a REAL
transformers model folder on the CPU, through ``gqr_serving.backends.local.LocalBackend``:

- ``POST /generate`` ``{"inputs", "parameters"}`` -> ``{"generated_text"[, "details"]}``
  (the gateway's ``http`` transport, and every call that selects a LoRA ``adapter_id``);
- ``POST /`` (``stream`` absent or false) -> ``[{"generated_text"[, "details"]}]`` (TGI's root
  route, which huggingface_hub's ``AsyncInferenceClient.text_generation`` posts to a URL);
- ``GET /health`` (200 once the weights are loaded: the port opens only then), ``GET /info``.

Validation follows TGI where it is cheap: empty ``inputs``, ``temperature <= 0``, ``top_p``
outside (0, 1) and an unknown ``adapter_id`` answer 422 ``{"error", "error_type"}``; a model
error answers 424. Sampling is on when ``do_sample`` or a non-default temperature/top_p is
given. Adapters (``--lora-adapter NAME=DIR`` or ``LORA_ADAPTERS=NAME=DIR,...``) are served as
separate models: a full model folder as is, a PEFT adapter folder merged into the base weights
at start. Concurrent requests to a model are micro-batched (``--max-batch``, default 32: up to
that many decoded together, each with its own parameters and seed), like TGI's continuous
batching except that a running batch takes in no new requests. Differences: stop sequences
are cut from the text (TGI keeps the stop sequence), ``details`` carries no tokens.

Usage: ``python testsupport/tgi_standin.py --model DIR --host 127.0.0.5 --port 8080``
(``--model``/``--port`` default to ``$MODEL_ID``/``$PORT`` as in the TGI image), or from a test
:func:`start_tgi_standin`. Imports nothing of this package, so it runs as a script from anywhere.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request  # module level: FastAPI resolves the handlers' annotations
from fastapi.responses import JSONResponse


def merged_adapter(base: Path, adapter: Path, dest: Path) -> Path:
    """A PEFT adapter folder merged into ``base``, saved as a full model folder under dest."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(base))
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(dest))
    tok_src = adapter if (adapter / "tokenizer_config.json").exists() else base
    AutoTokenizer.from_pretrained(str(tok_src)).save_pretrained(str(dest))
    return dest


def model_folder(path: Path, base: Path, scratch: Path) -> Path:
    """A servable folder for ``path``: a full model as is, an adapter merged into ``base``."""
    if (path / "config.json").is_file():
        return path
    if (path / "adapter_config.json").is_file():
        return merged_adapter(base, path, scratch / path.name)
    raise FileNotFoundError(f"{path}: neither a model (config.json) nor an adapter folder")


def build_app(model_id: str, backends: dict[str | None, Any], tokenizer: Any) -> Any:
    """The FastAPI app; ``backends[None]`` is the base model, other keys are adapter ids."""
    from gqr_serving.backends.base import BackendError, PromptInput

    app = FastAPI()

    async def run(body: Any) -> dict[str, Any] | JSONResponse:
        parsed = _request(body, backends)
        if isinstance(parsed, JSONResponse):
            return parsed
        params, adapter = parsed
        try:
            text = await backends[adapter].generate(PromptInput(body["inputs"]), params)
        except BackendError as exc:
            return _error(424, str(exc), "generation")
        out: dict[str, Any] = {"generated_text": text}
        if (body.get("parameters") or {}).get("details"):
            n = len(tokenizer(text, add_special_tokens=False).input_ids)
            out["details"] = {
                "finish_reason": "length" if n >= params.max_new_tokens else "eos_token",
                "generated_tokens": n,
                "seed": params.seed,
                "prefill": [],
                "tokens": [],
            }
        return out

    @app.post("/generate")
    async def generate(request: Request) -> Any:
        return await run(await request.json())

    @app.post("/")
    async def compat(request: Request) -> Any:
        out = await run(await request.json())
        return out if isinstance(out, JSONResponse) else [out]

    @app.get("/health")
    async def health() -> Any:
        return JSONResponse(None, status_code=200)

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return _info(model_id, sorted(k for k in backends if k))

    return app


def _error(status: int, message: str, kind: str = "validation") -> JSONResponse:
    return JSONResponse({"error": message, "error_type": kind}, status_code=status)


def _request(
    body: Any, backends: Mapping[str | None, Any]
) -> tuple[Any, str | None] | JSONResponse:
    """The ``GenerationParams`` and adapter id of a TGI request, or TGI's 422 where it refuses
    it. Sampling is on with ``do_sample`` or a temperature other than 1 or any top_p."""
    from gqr_serving.backends.base import GenerationParams

    if not isinstance(body, dict) or not isinstance(body.get("inputs"), str):
        return _error(422, "`inputs` must be a string")
    if not body["inputs"]:
        return _error(422, "`inputs` cannot be empty")
    if body.get("stream"):
        return _error(422, "streaming is not supported by the stand-in")
    p = body.get("parameters") or {}
    temperature, top_p = p.get("temperature"), p.get("top_p")
    if temperature is not None and float(temperature) <= 0:
        return _error(422, "`temperature` must be strictly positive")
    if top_p is not None and not 0 < float(top_p) < 1:
        return _error(422, "`top_p` must be > 0.0 and < 1.0")
    adapter = p.get("adapter_id") or None
    if adapter not in backends:
        return _error(
            422, f"adapter {adapter!r} is not loaded (loaded: {sorted(map(str, backends))})"
        )
    sample = bool(p.get("do_sample")) or (temperature is not None and float(temperature) != 1.0)
    sample = sample or top_p is not None
    params = GenerationParams(
        max_new_tokens=int(p.get("max_new_tokens") or 100),
        temperature=float(temperature if temperature is not None else 1.0) if sample else 0.0,
        top_p=float(top_p if top_p is not None else 1.0),
        seed=p.get("seed"),
        stop=tuple(p.get("stop") or ()),
    )
    return params, adapter


def _info(model_id: str, adapters: list[str]) -> dict[str, Any]:
    """TGI's ``/info`` answer for this stand-in."""
    return {
        "model_id": model_id,
        "model_sha": None,
        "model_dtype": "torch.float32",
        "model_device_type": "cpu",
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": 128,
        "max_best_of": 1,
        "max_stop_sequences": 4,
        "max_input_tokens": 1024,
        "max_total_tokens": 2048,
        "validation_workers": 1,
        "max_client_batch_size": 1,
        "router": "text-generation-router",
        "version": "gqr-test-standin",
        "sha": None,
        "docker_label": None,
        "adapters": adapters,
    }


def start_tgi_standin(
    model: Path,
    host: str,
    port: int,
    log_path: Path,
    *,
    adapters: Sequence[tuple[str, Path]] = (),
    threads: int = 1,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """This stand-in as a child in its own session (stop it by killing its process group);
    its output is appended to ``log_path``. ``/health`` answers 200 once it serves."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--model", str(model), "--host", host]
    argv += ["--port", str(port), "--threads", str(threads)]
    for name, path in adapters:
        argv += ["--lora-adapter", f"{name}={path}"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _adapters(values: list[str]) -> list[tuple[str, Path]]:
    out = []
    for item in values:
        for pair in filter(None, (x.strip() for x in item.split(","))):
            name, sep, path = pair.partition("=")
            if not sep:
                raise SystemExit(f"adapter {pair!r}: expected NAME=DIR")
            out.append((name, Path(path)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("MODEL_ID"), help="model folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--lora-adapter", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument(
        "--max-batch", type=int, default=32, help="requests decoded together (1: one at a time)"
    )
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("--model (or $MODEL_ID) is required")
    adapters = _adapters(args.lora_adapter or [os.environ.get("LORA_ADAPTERS", "")])

    import uvicorn
    from transformers import AutoTokenizer

    from gqr_serving.backends.local import LocalBackend

    base = Path(args.model)
    with tempfile.TemporaryDirectory(prefix="tgi-standin-") as scratch:
        backends: dict[str | None, Any] = {
            None: LocalBackend(base, threads=args.threads, max_batch=args.max_batch)
        }
        for name, path in adapters:
            folder = model_folder(path, base, Path(scratch))
            backends[name] = LocalBackend(folder, threads=args.threads, max_batch=args.max_batch)
        for backend in backends.values():
            backend.load()  # before the port opens: /health answers only when ready
        tokenizer = AutoTokenizer.from_pretrained(str(base))
        app = build_app(str(args.model), backends, tokenizer)
        print(
            f"tgi stand-in: {base} adapters={[n for n, _ in adapters]} on {args.host}:{args.port}",
            file=sys.stderr,
            flush=True,
        )
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
