"""A TGI-protocol server (``POST /generate``, ``POST /``) around the REAL tiny model, so tests
can run the LLM out of process and kill it. Usage: python tiny_tgi_server.py MODEL_DIR PORT"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from fastapi import FastAPI

from gqr_serving.backends import GenerationParams, PromptInput
from gqr_serving.backends.local import LocalBackend


def main() -> None:
    model_dir, port = sys.argv[1], int(sys.argv[2])
    backend = LocalBackend(model_dir)
    backend.load()
    app = FastAPI()

    async def run(body: dict[str, Any]) -> str:
        p = body.get("parameters") or {}
        params = GenerationParams(
            max_new_tokens=int(p.get("max_new_tokens", 20)),
            temperature=float(p.get("temperature") or 0.0) if p.get("do_sample") else 0.0,
            top_p=float(p.get("top_p") or 1.0),
            seed=p.get("seed"),
        )
        return await backend.generate(PromptInput(body["inputs"]), params)

    @app.post("/generate")
    async def generate(body: dict[str, Any]) -> dict[str, Any]:
        return {"generated_text": await run(body)}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
