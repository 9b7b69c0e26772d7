"""The real KServe ModelServer in a subprocess, called over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from testsupport.procs import free_port, kill, start_ctr_server

from gqr_training.ctr.scorer import CTRScorer

PAIRS = [
    ("paris price", ["paris tips", "paris history", "tokyo weather"]),
    ("yoga tips", ["yoga price", "yoga reviews", "pizza tips"]),
]


@pytest.fixture(scope="module")
def server(tiny_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("ctr-server") / "server.log"
    flags = ("--enable_grpc", "false", "--threads", "1")
    proc = start_ctr_server(tiny_artifact, port, log, *flags, timeout=120)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        kill(proc)


@pytest.fixture(scope="module")
def local(tiny_artifact: Path) -> CTRScorer:
    return CTRScorer.load(tiny_artifact)


def test_ready_and_v1_matches_in_process(server: str, local: CTRScorer) -> None:
    assert httpx.get(f"{server}/v1/models/ctr").json()["ready"] is True
    body = {"instances": [{"query": q, "queries": qs} for q, qs in PAIRS]}
    body["instances"][1]["component"] = "singleChoice"
    r = httpx.post(f"{server}/v1/models/ctr:predict", json=body, timeout=30)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    expected = local.score_batch(PAIRS)
    for pred, exp in zip(preds, expected, strict=True):
        assert pred["p"] == pytest.approx(exp, abs=1e-5)
    assert preds[0]["reward"] == pytest.approx(local.list_reward(*PAIRS[0]), abs=1e-5)
    assert preds[1]["reward"] == pytest.approx(sum(expected[1]), abs=1e-5)


def test_v2_matches_in_process(server: str, local: CTRScorer) -> None:
    body = {
        "inputs": [
            {"name": "query", "shape": [2], "datatype": "BYTES", "data": [q for q, _ in PAIRS]},
            {
                "name": "queries",
                "shape": [2, 3],
                "datatype": "BYTES",
                "data": [x for _, qs in PAIRS for x in qs],
            },
        ]
    }
    r = httpx.post(f"{server}/v2/models/ctr/infer", json=body, timeout=30)
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o for o in r.json()["outputs"]}
    assert outputs["p"]["shape"] == [2, 3]
    expected = [p for probs in local.score_batch(PAIRS) for p in probs]
    assert outputs["p"]["data"] == pytest.approx(expected, abs=1e-5)
    assert len(outputs["reward"]["data"]) == 2


def test_user_keys_personalise_over_v1_and_v2_as_in_process(server: str, local: CTRScorer) -> None:
    assert local.users is not None  # ctr-train fitted the users of its logs (u0 .. u49)
    heavy = max(local.users.factors, key=local.users.factors.__getitem__)
    light = min(local.users.factors, key=local.users.factors.__getitem__)
    keys = [heavy, light]
    body = {"instances": [{"query": q, "queries": qs, "user_key": u} for (q, qs), u in
                          zip(PAIRS, keys, strict=True)]}  # fmt: skip
    r = httpx.post(f"{server}/v1/models/ctr:predict", json=body, timeout=30)
    assert r.status_code == 200, r.text
    v1 = [pred["p"] for pred in r.json()["predictions"]]
    expected = local.score_batch(PAIRS, user_keys=keys)
    assert expected != local.score_batch(PAIRS)  # the keys change the scores
    for got, exp in zip(v1, expected, strict=True):
        assert got == pytest.approx(exp, abs=1e-5)
    v2_body = {
        "inputs": [
            {"name": "query", "shape": [2], "datatype": "BYTES", "data": [q for q, _ in PAIRS]},
            {"name": "queries", "shape": [2, 3], "datatype": "BYTES",
             "data": [x for _, qs in PAIRS for x in qs]},
            {"name": "user_key", "shape": [2], "datatype": "BYTES", "data": keys},
        ]
    }  # fmt: skip
    r = httpx.post(f"{server}/v2/models/ctr/infer", json=v2_body, timeout=30)
    assert r.status_code == 200, r.text
    p = next(o for o in r.json()["outputs"] if o["name"] == "p")["data"]
    assert p == pytest.approx([x for probs in expected for x in probs], abs=1e-5)
    bad = {"instances": [{"query": "q", "queries": ["a"], "user_key": 7}]}
    r = httpx.post(f"{server}/v1/models/ctr:predict", json=bad, timeout=30)
    assert r.status_code == 400 and r.json()["error"].startswith("instances[0].user_key=7:")


def test_concurrent_requests_are_answered_each_with_its_own_scores(
    server: str, local: CTRScorer
) -> None:
    import asyncio

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *[
                    client.post(
                        f"{server}/v1/models/ctr:predict",
                        json={"instances": [{"query": q, "queries": qs}]},
                    )
                    for q, qs in PAIRS * 4
                ]
            )

    for r, (q, qs) in zip(asyncio.run(go()), PAIRS * 4, strict=True):
        assert r.json()["predictions"][0]["p"] == pytest.approx(local.score(q, qs), abs=1e-5)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"instances": [{"query": "q", "queries": []}]}', "instances[0].queries"),
        (
            b'{"instances": [{"query": "' + b"x" * 10_000 + b'", "queries": ["a"]}]}',
            "instances[0].query",
        ),
        (
            b'{"instances": [{"query": "q", "queries": ["a","b","c","d","e"]}]}',
            "instances[0].queries",
        ),
        (b'{"instances": [{"queries": ["a"]}]}', "instances[0].query"),
        (b'{"instances": [{"query": "q"}]}', "instances[0].queries"),
        (b'{"nothing": 1}', "instances"),
        (b'{"instances": [{"query": "q\xff\xfe", "queries": ["a"]}]}', "request"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(server: str, content: bytes, field: str) -> None:
    r = httpx.post(
        f"{server}/v1/models/ctr:predict",
        content=content,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    error = r.json()["error"]
    if field == "request":  # non-UTF-8 bytes never reach the model: KServe's JSON decoder
        assert "utf-8" in error.lower() or "unrecognized request format" in error.lower()
    else:
        assert re.match(re.escape(field) + "[=:]", error), error
    # The server is still alive and well after bad input.
    ok = httpx.post(
        f"{server}/v1/models/ctr:predict",
        json={"instances": [{"query": "q", "queries": ["a"]}]},
        timeout=30,
    )
    assert ok.status_code == 200


def test_v2_bad_input_is_a_400(server: str) -> None:
    body = {"inputs": [{"name": "queries", "shape": [1, 1], "datatype": "BYTES", "data": ["a"]}]}
    r = httpx.post(f"{server}/v2/models/ctr/infer", json=body, timeout=30)
    assert r.status_code == 400
    assert r.json()["error"].startswith("inputs.query: missing")
