"""Candidate generation: C sampled continuations of (prompt + already chosen queries), or whole
sampled responses, from an in-process transformers model or an OpenAI-compatible server.

Diversity: transformers 4.57 moved group (diverse) beam search to a hub ``custom_generate``
repository (``transformers-community/group-beam-search``), which an offline machine cannot
fetch; so diversity comes from sampling the C candidates at several temperatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from gqr_training.align.tinylm import SEP_TOKEN


class Engine(Protocol):
    """Sampled continuations of texts: ``n`` per text, each cut at ``<SEP>`` when asked."""

    def complete(
        self,
        texts: Sequence[str],
        n: int,
        temperature: float,
        max_new_tokens: int,
        stop_at_sep: bool,
    ) -> list[list[str]]: ...


def spread(c: int, temperatures: Sequence[float]) -> list[tuple[float, int]]:
    """Split ``c`` samples over the temperatures as evenly as possible (first ones get more)."""
    temps = list(temperatures) or [1.0]
    base, extra = divmod(c, len(temps))
    return [(t, base + (i < extra)) for i, t in enumerate(temps) if base + (i < extra) > 0]


def next_query_candidates(
    engine: Engine,
    texts: Sequence[str],
    c: int,
    temperatures: Sequence[float] = (0.8, 1.0, 1.3),
    max_new_tokens: int = 16,
) -> list[list[str]]:
    """C candidate next queries per text (prompt + prefix), duplicates kept (the caller dedups)."""
    out: list[list[str]] = [[] for _ in texts]
    for temp, n in spread(c, temperatures):
        got = engine.complete(texts, n, temp, max_new_tokens, stop_at_sep=True)
        for i, conts in enumerate(got):
            out[i].extend(x.split(SEP_TOKEN)[0].strip() for x in conts)
    return out


class HFEngine:
    """In-process ``model.generate``: left-padded batches, KV cache during decoding.

    ``num_return_sequences`` expands each prompt before the prefill, so the prompt's KV cache is
    reused across decoding steps but recomputed per sample (cheap for short prompts on a small
    model; a server engine with prefix caching does better at scale).
    """

    def __init__(
        self, model: Any, tokenizer: Any, device: str = "cpu", batch_size: int = 256, seed: int = 0
    ) -> None:
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.batch_size = batch_size
        self.seed = seed
        self._calls = 0
        sep = tokenizer.encode(SEP_TOKEN, add_special_tokens=False)
        self._sep_id = sep[0] if len(sep) == 1 else None

    def complete(
        self,
        texts: Sequence[str],
        n: int,
        temperature: float,
        max_new_tokens: int,
        stop_at_sep: bool,
    ) -> list[list[str]]:
        import torch

        tok, model = self.tokenizer, self.model
        tok.padding_side = "left"
        eos: list[int] = [tok.eos_token_id]
        extra: dict[str, Any] = {}
        if stop_at_sep:
            if self._sep_id is not None:
                eos.append(self._sep_id)
            else:
                extra = {"stop_strings": [SEP_TOKEN], "tokenizer": tok}
        sampling = temperature > 0
        if sampling:
            extra.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
        else:
            extra.update(do_sample=False)
        per = max(1, self.batch_size // max(1, n))
        out: list[list[str]] = []
        was_training = model.training
        model.eval()
        self._calls += 1
        torch.manual_seed(self.seed * 1_000_003 + self._calls)
        with torch.no_grad():
            for lo in range(0, len(texts), per):
                chunk = list(texts[lo : lo + per])
                enc = tok(chunk, return_tensors="pt", padding=True, return_token_type_ids=False).to(
                    self.device
                )
                gen = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    num_return_sequences=n,
                    eos_token_id=eos,
                    pad_token_id=tok.pad_token_id,
                    **extra,
                )
                new = gen[:, enc["input_ids"].shape[1] :]
                decoded = tok.batch_decode(new, skip_special_tokens=True)
                for i in range(len(chunk)):
                    out.append([d.strip() for d in decoded[i * n : (i + 1) * n]])
        if was_training:
            model.train()
        return out


class OpenAIEngine:
    """An OpenAI-compatible ``/v1/completions`` server (vLLM, TGI's Messages-free route, ...):
    one HTTP request per text with ``n`` samples and ``stop: ["<SEP>"]``."""

    def __init__(self, base_url: str, model: str = "gqr", timeout: float = 60.0) -> None:
        import httpx

        self.model = model
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def complete(
        self,
        texts: Sequence[str],
        n: int,
        temperature: float,
        max_new_tokens: int,
        stop_at_sep: bool,
    ) -> list[list[str]]:
        out: list[list[str]] = []
        for text in texts:
            body: dict[str, Any] = {
                "model": self.model,
                "prompt": text,
                "n": n,
                "temperature": temperature,
                "max_tokens": max_new_tokens,
            }
            if stop_at_sep:
                body["stop"] = [SEP_TOKEN]
            r = self.client.post("/v1/completions", json=body)
            r.raise_for_status()
            out.append([c["text"].strip() for c in r.json()["choices"]])
        return out
