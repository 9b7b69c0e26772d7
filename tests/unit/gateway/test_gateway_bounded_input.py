"""Bounded input: a body over the limit is refused with 413 before it is parsed, NaN and
Infinity are a 422 (never a 500), and an error answer quotes at most a short excerpt of the
input, whatever was sent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gateway_fakes import ScriptedBackend, client

pytestmark = pytest.mark.anyio
REQ = {"task": "suggestion", "query": "what is green tea"}


def _raw(payload: str) -> dict[str, object]:
    return {"content": payload.encode(), "headers": {"content-type": "application/json"}}


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/v1/recommend", json.dumps({**REQ, "history": ["x"] * 1_000_000})),
        ("/v1/recommend", json.dumps({**REQ, "ai_answer": "y" * (4 << 20)})),
        ("/v1/feedback", json.dumps({"impression_id": "a", "positions": [1] * 400_000})),
    ],
    ids=["a million-item history", "4 MiB answer", "huge click list"],
)
async def test_a_body_over_the_limit_is_413_and_short(
    tmp_path: Path, path: str, payload: str
) -> None:
    async with client(tmp_path, ScriptedBackend("a <SEP> b <SEP> c")) as c:
        r = await c.post(path, **_raw(payload))  # type: ignore[arg-type]
        spec = (await c.get("/openapi.json")).json()
    assert r.status_code == 413
    assert r.json()["error"] == "body_too_large" and "at most 65536" in r.json()["detail"]
    assert len(r.content) < 200
    # The API's own description says so (schemathesis refuses undocumented status codes).
    assert "413" in spec["paths"][path]["post"]["responses"]


async def test_a_chunked_body_is_cut_off_at_the_limit(tmp_path: Path) -> None:
    sent = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):  # 100 x 16 KiB, no Content-Length
            sent.append(1)
            yield b" " * 16384

    async with client(tmp_path, ScriptedBackend("a <SEP> b <SEP> c")) as c:
        r = await c.post(
            "/v1/recommend", content=chunks(), headers={"content-type": "application/json"}
        )
    assert r.status_code == 413 and "more than 65536" in r.json()["detail"]
    assert len(sent) < 100  # the gateway stopped reading


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/v1/recommend", '{"task": "suggestion", "query": "q", "num_queries": NaN}',
         "num_queries"),
        ("/v1/recommend", '{"task": "suggestion", "query": "q", "num_queries": Infinity}',
         "num_queries"),
        ("/v1/feedback", '{"impression_id": "a", "positions": [NaN]}', "positions"),
        ("/v1/feedback", '{"impression_id": "a", "positions": [-Infinity, 1]}', "positions"),
    ],
)  # fmt: skip
async def test_nan_and_infinity_are_422(
    tmp_path: Path, path: str, payload: str, field: str
) -> None:
    async with client(tmp_path, ScriptedBackend("a <SEP> b <SEP> c")) as c:
        r = await c.post(path, **_raw(payload))  # type: ignore[arg-type]
    assert r.status_code == 422, r.text
    (error, *_) = r.json()["detail"]
    assert field in error["loc"] and error["input"] in ("nan", "inf", "-inf")


async def test_an_error_quotes_a_short_excerpt_only(tmp_path: Path) -> None:
    long = "z" * 30_000
    async with client(tmp_path, ScriptedBackend("a <SEP> b <SEP> c")) as c:
        r = await c.post("/v1/recommend", json={**REQ, "query": long})
        whole = await c.post("/v1/recommend", json={**REQ, "history": {"not": "a list"}})
    assert r.status_code == 422 and len(r.content) < 1000
    assert r.json()["detail"][0]["input"] == "z" * 80 + "..."
    assert whole.status_code == 422 and whole.json()["detail"][0]["input"] == "<object with 1 keys>"


async def test_a_body_at_the_limit_is_served(tmp_path: Path) -> None:
    body = json.dumps({**REQ, "ai_answer": "w" * 7000})
    async with client(tmp_path, ScriptedBackend("a <SEP> b <SEP> c"), max_body_bytes=8192) as c:
        ok = await c.post("/v1/recommend", **_raw(body))  # type: ignore[arg-type]
        refused = await c.post("/v1/recommend", **_raw(body + " " * 2000))  # type: ignore[arg-type]
    assert ok.status_code == 200 and refused.status_code == 413
