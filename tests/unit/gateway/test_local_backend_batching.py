"""The in-process LLM backend micro-batches concurrent calls: what a caller sees is the same as
one call at a time (greedy text, seeded text, per-call limits), only faster; a model error or
``aclose`` fails the calls concerned with BackendError and never hangs. Real tiny models."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest

from gqr_serving.backends.base import BackendError, GenerationParams, PromptInput
from gqr_serving.backends.local import LocalBackend

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

TOPICS = ["green tea", "roth ira", "sourdough bread", "ryder cup", "banff park", "paris hotels"]
# Sixteen prompts of different lengths: the batch is left-padded, so padding is exercised.
PROMPTS = [
    " ".join(["what is", TOPICS[i % len(TOPICS)], *(["best price near me"] * (i % 5))])
    for i in range(16)
]
GREEDY = GenerationParams(max_new_tokens=16, temperature=0.0)


@pytest.fixture(scope="module")
def llama_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real random-init Llama (gqr_training's tiny LM) with a word-level tokenizer: one token
    is one word, so a completion's word count is its token count."""
    from gqr_training.align import tinylm

    corpus = [*PROMPTS, "what is the best tea <SEP> tea prices <SEP> tea reviews"]
    tok = tinylm.train_tokenizer(corpus)
    config = tinylm.TinyLMConfig(hidden=64, layers=2, heads=2, intermediate=128)
    model = tinylm.build_model(tok, config)
    return tinylm.save(model, tok, tmp_path_factory.mktemp("llama-lm"))


@pytest.fixture(params=["gpt2", "llama"])
def model_dir(request: pytest.FixtureRequest, tiny_lm: Path, llama_lm: Path) -> Path:
    return tiny_lm if request.param == "gpt2" else llama_lm


async def alone(model_dir: Path, calls: list[tuple[str, GenerationParams]]) -> list[str]:
    """Each call on its own, one after the other, on a one-at-a-time backend."""
    backend = LocalBackend(model_dir, max_batch=1)
    try:
        return [await backend.generate(PromptInput(p), params) for p, params in calls]
    finally:
        await backend.aclose()


async def together(
    backend: LocalBackend, calls: list[tuple[str, GenerationParams]]
) -> list[str | BaseException]:
    return await asyncio.gather(
        *(backend.generate(PromptInput(p), params) for p, params in calls),
        return_exceptions=True,
    )


async def test_concurrent_greedy_calls_answer_as_if_alone(model_dir: Path) -> None:
    calls = [(p, GREEDY) for p in PROMPTS]
    expected = await alone(model_dir, calls)
    backend = LocalBackend(model_dir)
    try:
        got = await together(backend, calls)
    finally:
        await backend.aclose()
    assert got == expected
    assert backend.batches_run < len(calls)  # they did share batches
    assert len(set(expected)) > 1  # different prompts, different texts: a real comparison


async def test_seeded_sample_is_the_same_alone_and_in_a_mixed_batch(model_dir: Path) -> None:
    seeded = GenerationParams(max_new_tokens=24, temperature=0.9, top_p=0.9, seed=1234)
    others = [
        GenerationParams(max_new_tokens=8 + i, temperature=1.0, top_p=0.95, seed=i)
        if i % 3 == 0
        else GenerationParams(max_new_tokens=30, temperature=0.7, top_p=1.0)
        if i % 3 == 1
        else GenerationParams(max_new_tokens=5, temperature=0.0)
        for i in range(15)
    ]
    (expected,) = await alone(model_dir, [(PROMPTS[7], seeded)])
    calls = [(p, params) for p, params in zip(PROMPTS[:7] + PROMPTS[8:], others, strict=True)]
    calls.insert(7, (PROMPTS[7], seeded))
    backend = LocalBackend(model_dir)
    try:
        got = await together(backend, calls)
    finally:
        await backend.aclose()
    assert got[7] == expected
    assert all(isinstance(x, str) for x in got)
    assert backend.batches_run < len(calls)


async def test_calls_are_really_batched(tiny_lm: Path) -> None:
    backend = LocalBackend(tiny_lm, max_batch=8)
    try:
        got = await together(backend, [(p, GREEDY) for p in PROMPTS])
    finally:
        await backend.aclose()
    assert all(isinstance(x, str) for x in got)
    assert backend.calls_run == 16
    assert 2 <= backend.batches_run < 16  # at most 8 a batch, and far fewer than one each


async def test_each_row_keeps_its_own_max_new_tokens(llama_lm: Path) -> None:
    rows = [
        GenerationParams(max_new_tokens=3 if i % 2 else 30, temperature=1.0, top_p=1.0, seed=i)
        for i in range(16)
    ]
    backend = LocalBackend(llama_lm)
    try:
        got = await together(backend, list(zip(PROMPTS, rows, strict=True)))
    finally:
        await backend.aclose()
    words = [len(str(x).split()) for x in got]
    assert all(n <= 3 for n in words[1::2]), words
    assert max(words[0::2]) > 3, words  # the long rows were not cut at the short rows' limit


def _slow_forward(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Every forward pass of the tiny GPT-2 takes ``seconds`` longer."""
    from transformers import GPT2LMHeadModel

    real = GPT2LMHeadModel.forward

    @functools.wraps(real)  # the same signature: the decoder asks it for the KV cache's name
    def slow(self: Any, *args: Any, **kwargs: Any) -> Any:
        import time

        time.sleep(seconds)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(GPT2LMHeadModel, "forward", slow)


async def test_a_short_call_is_answered_before_its_batch_ends(
    tiny_lm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _slow_forward(monkeypatch, 0.01)  # the long call needs 40 steps: >= 0.4 s
    backend = LocalBackend(tiny_lm, batch_wait_ms=200)  # both calls surely share the batch
    try:
        long = asyncio.ensure_future(
            backend.generate(PromptInput(PROMPTS[0]), GenerationParams(40, temperature=0.0))
        )
        short = await backend.generate(PromptInput(PROMPTS[1]), GenerationParams(2, 0.0))
        assert not long.done()  # answered while its batchmate still decodes
        await long
    finally:
        await backend.aclose()
    assert isinstance(short, str)
    assert backend.batches_run == 1


async def test_stop_strings_are_cut_and_long_prompts_truncated(tmp_path: Path) -> None:
    from testsupport.artifacts import build_random_gpt2

    short_lm = build_random_gpt2(tmp_path / "lm", max_positions=64)
    long_prompt = "what is green tea " * 100  # ~400 tokens, far past 64 positions
    (full,) = await alone(short_lm, [(PROMPTS[0], GREEDY)])
    stop = full.strip()[len(full.strip()) // 2 :][:3]
    assert stop
    backend = LocalBackend(short_lm)
    try:
        got = await together(
            backend,
            [
                (PROMPTS[0], GenerationParams(max_new_tokens=16, temperature=0.0, stop=(stop,))),
                (long_prompt, GREEDY),
                (long_prompt, GenerationParams(max_new_tokens=500, temperature=0.0)),
            ],
        )
    finally:
        await backend.aclose()
    assert got[0] == full.split(stop, 1)[0]
    assert isinstance(got[1], str) and isinstance(got[2], str)


async def test_model_error_fails_its_batch_and_the_worker_goes_on(
    tiny_lm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import GPT2LMHeadModel

    def broken(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA error: device-side assert triggered")

    backend = LocalBackend(tiny_lm, max_batch=8)
    backend.load()
    try:
        monkeypatch.setattr(GPT2LMHeadModel, "forward", broken)
        failed = await together(backend, [(p, GREEDY) for p in PROMPTS[:4]])
        monkeypatch.undo()
        assert all(isinstance(x, BackendError) for x in failed), failed
        assert "device-side assert" in str(failed[0])
        later = await together(backend, [(p, GREEDY) for p in PROMPTS[:4]])
    finally:
        await backend.aclose()
    assert later == await alone(tiny_lm, [(p, GREEDY) for p in PROMPTS[:4]])


async def test_aclose_fails_pending_calls_and_never_hangs(
    tiny_lm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _slow_forward(monkeypatch, 0.02)  # ~1 s per call of 50 tokens: still queued at aclose
    backend = LocalBackend(tiny_lm, max_batch=1)
    long = GenerationParams(max_new_tokens=50, temperature=0.0)
    tasks = [asyncio.ensure_future(backend.generate(PromptInput(p), long)) for p in PROMPTS[:5]]
    while backend.batches_run == 0:  # the first call is decoding, four are queued
        await asyncio.sleep(0.01)
    await backend.aclose()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(x, BackendError) for x in results), results
    assert "closed" in str(results[-1])
    monkeypatch.undo()
    try:  # closed is not dead: a later call loads the model again
        assert (
            await backend.generate(PromptInput(PROMPTS[0]), GREEDY)
            == (await alone(tiny_lm, [(PROMPTS[0], GREEDY)]))[0]
        )
    finally:
        await backend.aclose()


async def test_a_caller_that_gives_up_does_not_stall_the_others(tiny_lm: Path) -> None:
    backend = LocalBackend(tiny_lm, max_batch=4)
    try:
        impatient = asyncio.ensure_future(
            backend.generate(PromptInput(PROMPTS[1]), GenerationParams(max_new_tokens=200))
        )
        await asyncio.sleep(0)  # queued (or decoding) when its caller gives up
        impatient.cancel()
        with pytest.raises(asyncio.CancelledError):
            await impatient
        patient = await together(backend, [(p, GREEDY) for p in PROMPTS[:6]])
    finally:
        await backend.aclose()
    assert patient == await alone(tiny_lm, [(p, GREEDY) for p in PROMPTS[:6]])
