"""The request path's faster code answers exactly as the code it replaced.

Each fast path (one prompt render, bounded near-copy check, ASCII charset check, aiohttp TGI
transport, cached sniffio miss) is checked against a reference written the old way.
"""

from __future__ import annotations

import difflib
import json
import random
import sys
import unicodedata
from collections.abc import AsyncIterator
from typing import Any

import pytest
from testsupport.http_stub import Reply, ScriptedServer

from gqr_serving.backends import BackendError, GenerationParams, PromptInput
from gqr_serving.backends.httpclient import async_client, cache_missing_sniffio
from gqr_serving.backends.tgi import TGIBackend
from gqr_serving.gateway import filters
from gqr_serving.prompt import (
    PromptRequest,
    SideInfo,
    is_near_copy,
    list_presets,
    load_preset,
    render,
    render_messages,
    render_prompt,
    split_sections,
)

pytestmark = pytest.mark.unit


SAMPLED_PARAMETERS = {
    "max_new_tokens": 64,
    "do_sample": True,
    "details": False,
    "stop": ["x"],
    "temperature": 0.5,
    "top_p": 0.9,
    "seed": 7,
}
"""What TGI is sent for GenerationParams(temperature=0.5, top_p=0.9, seed=7, stop=("x",))."""


def _old_words(text: str) -> list[str]:
    kept = "".join(ch if not unicodedata.category(ch).startswith("P") else " " for ch in text)
    return kept.casefold().split()


def _old_is_near_copy(query: str, user_query: str, threshold: float) -> bool:
    a, b = _old_words(query), _old_words(user_query)
    if not a or not b:
        return False
    if a == b or sorted(a) == sorted(b):
        return True
    return difflib.SequenceMatcher(None, " ".join(a), " ".join(b)).ratio() >= threshold


def _old_clean_text(text: str) -> bool:
    bad = {"Cc", "Cf", "Co", "Cs", "Cn"}
    return "\ufffd" not in text and not any(unicodedata.category(ch) in bad for ch in text)


def _random_text(rng: random.Random) -> str:
    pools = [
        lambda: chr(rng.randrange(32, 127)),
        lambda: chr(rng.randrange(0, 0x3000)),
        lambda: rng.choice(
            "\u00bf\u00a1\u00ab\u00bb\u201c\u201d\u2014\u2026\u3001\u3002\uff01\uff1f\u2018\u2019"
        ),
        lambda: rng.choice(" \t\n\u2028\x7f\x00\ufffd\u200b\ue000"),
    ]
    return "".join(rng.choice(pools)() for _ in range(rng.randrange(0, 24)))


def test_near_copy_matches_the_difflib_reference() -> None:
    rng = random.Random(7)
    words = [
        "green",
        "tea",
        "what",
        "is",
        "the",
        "best",
        "brew",
        "matcha",
        "caffeine",
        "how",
        "to",
        "iced",
        "teas",
        "é",
        "café",
    ]
    for _ in range(5000):
        q = " ".join(rng.choice(words) for _ in range(rng.randrange(1, 7)))
        u = " ".join(rng.choice(words) for _ in range(rng.randrange(1, 7)))
        if rng.random() < 0.4:  # near copies: one edit away
            i = rng.randrange(len(q))
            u = q[:i] + rng.choice("xyz ,?") + q[i + 1 :]
        if rng.random() < 0.2:
            q, u = _random_text(rng), _random_text(rng)
        threshold = rng.choice([0.3, 0.6, 0.8, 0.9, 0.95, 1.0])
        assert is_near_copy(q, u, threshold) == _old_is_near_copy(q, u, threshold), (q, u)


def test_charset_check_matches_the_unicodedata_reference() -> None:
    rng = random.Random(3)
    samples = [_random_text(rng) for _ in range(5000)] + [chr(i) for i in range(256)]
    for text in samples:
        assert filters._clean_text(text) == _old_clean_text(text), repr(text)


@pytest.mark.parametrize("task", list_presets())
def test_render_prompt_is_render_and_render_messages(task: str) -> None:
    preset = load_preset(task)
    side = SideInfo(
        history=["tea types", "<b>x</b> & y"],
        ai_response="Green tea\nis <great>.",
        cooccurring=["green tea benefits", "matcha"],
        prefix="green",
    )
    request = PromptRequest(task=task, query="what is green tea?", side_info=side)
    rendered = render_prompt(preset, request)
    assert rendered.text == render(preset, request)
    assert rendered.messages == render_messages(preset, request)
    assert rendered.sections == split_sections(rendered.text)
    assert filters.secret_of_sections(rendered.sections) == filters.secret_text(rendered.text)


def test_sniffio_miss_is_cached_and_import_still_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    import importlib.util

    installed = importlib.util.find_spec("sniffio") is not None
    cache_missing_sniffio()
    if installed:
        assert "sniffio" not in sys.modules or sys.modules["sniffio"] is not None
        return
    assert sys.modules["sniffio"] is None
    with pytest.raises(ModuleNotFoundError):
        import sniffio  # noqa: F401


# -- the TGI http transport (aiohttp) against a scripted local server ------------------------------


@pytest.fixture
async def tgi() -> AsyncIterator[tuple[TGIBackend, list[Reply], list[Any]]]:
    server = await ScriptedServer().start()
    backend = TGIBackend(f"{server.url}/", transport="http", timeout_s=2.0)
    yield backend, server.replies, server.seen
    await backend.aclose()
    await server.stop()


@pytest.mark.anyio
async def test_tgi_http_posts_generate_and_maps_failures(
    tgi: tuple[TGIBackend, list[Reply], list[Any]],
) -> None:
    backend, replies, seen = tgi
    prompt = PromptInput("<query>\ntea\n</query>")
    params = GenerationParams(temperature=0.5, top_p=0.9, seed=7, adapter_id="v2", stop=("x",))
    replies += [
        (200, b'{"generated_text": "a <SEP> b"}'),
        (200, b'[{"generated_text": "c"}]'),
        (503, b"overloaded"),
        (200, b"not json"),
        (200, b'{"text": "no field"}'),
        (0, b""),
    ]
    assert await backend.generate(prompt, params) == "a <SEP> b"
    assert seen[0] == {
        "inputs": prompt.text,
        "parameters": {**SAMPLED_PARAMETERS, "adapter_id": "v2"},
    }
    assert await backend.generate(prompt, params) == "c"  # TGI's list form, same connection
    reasons = []
    for _ in range(4):
        with pytest.raises(BackendError) as err:
            await backend.generate(prompt, params)
        reasons.append(err.value.reason)
    assert reasons == ["status", "payload", "payload", "connect"]


@pytest.mark.anyio
async def test_tgi_http_slow_server_is_a_timeout() -> None:
    server = await ScriptedServer([(-1, b"")]).start()
    backend = TGIBackend(server.url, transport="http", timeout_s=0.2)
    with pytest.raises(BackendError) as err:
        await backend.generate(PromptInput("x"), GenerationParams())
    assert err.value.reason == "timeout"
    await backend.aclose()
    await server.stop()


@pytest.mark.anyio
async def test_tgi_http_unreachable_server_is_a_connect_error() -> None:
    backend = TGIBackend("http://127.0.0.1:9", transport="http", timeout_s=1.0)
    with pytest.raises(BackendError) as err:
        await backend.generate(PromptInput("x"), GenerationParams(adapter_id="a"))
    assert err.value.reason == "connect"
    await backend.aclose()


# -- the TGI client transport (huggingface_hub's AsyncInferenceClient), same server -------------


@pytest.fixture
def hub_online(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Hub's offline mode off (some conftests set HF_HUB_OFFLINE, read at import): in it,
    the client transport posts over plain HTTP instead (the last test below)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.mark.anyio
@pytest.mark.usefixtures("hub_online")
async def test_tgi_client_posts_tgi_parameters_and_maps_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_not_for_tgi")  # a token the client must not send
    server = await ScriptedServer().start()
    backend = TGIBackend(f"{server.url}/", transport="client", timeout_s=2.0)
    prompt = PromptInput("<query>\ntea\n</query>")
    params = GenerationParams(temperature=0.5, top_p=0.9, seed=7, stop=("x",))
    validation = b'{"error": "`top_p` must be > 0.0 and < 1.0", "error_type": "validation"}'
    server.replies += [
        (200, b'[{"generated_text": "a <SEP> b"}]'),  # TGI's root route answers a list
        (200, b'{"generated_text": "c"}'),
        (422, validation),
        (503, b"overloaded"),
        (200, b"not json"),
        (200, b'{"text": "no field"}'),
        (0, b""),
    ]
    try:
        assert await backend.generate(prompt, params) == "a <SEP> b"
        greedy = GenerationParams(max_new_tokens=8, temperature=0.0)
        assert await backend.generate(prompt, greedy) == "c"
        errors = []
        for _ in range(5):
            with pytest.raises(BackendError) as err:
                await backend.generate(prompt, params)
            errors.append(err.value)
    finally:
        await backend.aclose()
        await server.stop()
    assert server.seen[0] == {"inputs": prompt.text, "parameters": SAMPLED_PARAMETERS}
    assert server.seen[1]["parameters"] == {
        "max_new_tokens": 8,
        "do_sample": False,
        "details": False,
        "stop": [],
    }
    assert all(head.startswith("POST / HTTP/1.1") for head in server.heads)
    assert "authorization" not in "".join(server.heads).lower()
    assert [e.reason for e in errors] == ["status", "status", "payload", "payload", "connect"]
    assert "HTTP 422" in str(errors[0]) and "must be > 0.0" in str(errors[0])
    assert "HTTP 503" in str(errors[1]) and "overloaded" in str(errors[1])


@pytest.mark.anyio
@pytest.mark.usefixtures("hub_online")
async def test_tgi_client_slow_or_unreachable_server() -> None:
    server = await ScriptedServer([(-1, b"")]).start()
    slow = TGIBackend(server.url, transport="client", timeout_s=0.2)
    gone = TGIBackend("http://127.0.0.1:9", transport="client", timeout_s=1.0)
    reasons = []
    try:
        for backend in (slow, gone):
            with pytest.raises(BackendError) as err:
                await backend.generate(PromptInput("x"), GenerationParams())
            reasons.append(err.value.reason)
    finally:
        await slow.aclose()
        await gone.aclose()
        await server.stop()
    assert reasons == ["timeout", "connect"]


@pytest.mark.anyio
@pytest.mark.usefixtures("hub_online")
async def test_tgi_client_adapters_and_offline_mode_post_generate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from huggingface_hub import constants

    server = await ScriptedServer(always=(200, b'{"generated_text": "ok"}')).start()
    backend = TGIBackend(server.url, transport="client", timeout_s=2.0)
    try:
        # An adapter: /generate over aiohttp. Offline (HF_HUB_OFFLINE=1) the inference client
        # would refuse every request, so the same.
        assert await backend.generate(PromptInput("x"), GenerationParams(adapter_id="v2")) == "ok"
        assert backend._client is None
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        assert await backend.generate(PromptInput("x"), GenerationParams()) == "ok"
        assert backend._client is None  # the inference client was never made
    finally:
        await backend.aclose()
        await server.stop()


@pytest.mark.anyio
async def test_async_client_is_a_plain_httpx_client() -> None:
    client = async_client(base_url="http://127.0.0.1:9", timeout=1.0)
    assert str(client.base_url) == "http://127.0.0.1:9"
    await client.aclose()


@pytest.mark.anyio
async def test_ctr_client_scores_over_keep_alive_and_maps_failures() -> None:
    from gqr_serving.gateway.ctr import CTRClient, CTRError

    rewards = {"predictions": [{"p": [0.1], "reward": 0.1}, {"p": [0.9], "reward": 0.9}]}
    server = await ScriptedServer(
        [
            (200, json.dumps(rewards).encode()),
            (500, b"boom"),
            (200, b'{"predictions": [{"p": [1], "reward": 1}]}'),  # one score for two lists
            (-1, b""),
        ]
    ).start()
    seen = server.seen
    ctr = CTRClient(f"{server.url}/", "ctr", timeout_s=1.0)
    lists = [["a"], ["b"]]
    assert await ctr.score("q", lists, "multiChoice", 1.0) == [0.1, 0.9]
    assert seen[0] == {
        "instances": [
            {"query": "q", "queries": ["a"], "component": "multiChoice"},
            {"query": "q", "queries": ["b"], "component": "multiChoice"},
        ]
    }
    for message in ("HTTP 500: boom", "returned 1 scores", "TimeoutError"):
        with pytest.raises(CTRError, match=message):
            await ctr.score("q", lists, "multiChoice", 0.2)
    await ctr.aclose()
    await server.stop()


def _predictions(rewards: list[float]) -> bytes:
    return json.dumps({"predictions": [{"p": [r], "reward": r} for r in rewards]}).encode()


@pytest.mark.anyio
async def test_ctr_rerank_pointwise_is_one_request_and_greedy_builds_prefixes() -> None:
    import time

    from gqr_serving.gateway.ctr import CTRClient

    server = await ScriptedServer(
        [
            (200, _predictions([0.2, 0.7, 0.1, 0.7])),  # pointwise: ties keep the LLM's order
            (200, _predictions([0.2, 0.7, 0.1, 0.5])),  # greedy step 1: b first
            (200, _predictions([0.3, 0.1, 0.6])),  # greedy step 2 over a, c, d: d second
        ]
    ).start()
    seen = server.seen
    ctr = CTRClient(server.url, "ctr", timeout_s=1.0)
    deadline = time.monotonic() + 5
    cands = ["a", "b", "c", "d"]
    assert await ctr.rerank("q", cands, 2, "multiChoice", deadline) == ["b", "d"]
    assert [i["queries"] for i in seen[0]["instances"]] == [["a"], ["b"], ["c"], ["d"]]
    assert await ctr.rerank("q", cands, 2, "multiChoice", deadline, "greedy") == ["b", "d"]
    assert len(seen) == 3  # greedy: one request per position
    assert [i["queries"] for i in seen[2]["instances"]] == [["b", "a"], ["b", "c"], ["b", "d"]]
    await ctr.aclose()
    await server.stop()
