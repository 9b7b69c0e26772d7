"""Candidate generation: C sampled continuations of (prompt + already chosen queries), or whole
sampled responses, from an in-process transformers model or an OpenAI-compatible server.

Diversity: transformers 4.57 moved group (diverse) beam search to a hub ``custom_generate``
repository (``transformers-community/group-beam-search``), which an offline machine cannot
fetch; so diversity comes from sampling the C candidates at several temperatures.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
    plan = spread(c, temperatures)
    mixed = getattr(engine, "complete_mixed", None)
    if mixed is not None:  # one prefill per text for all C samples
        temps = [t for t, n in plan for _ in range(n)]
        got = mixed(texts, temps, max_new_tokens, True)
        return [[x.split(SEP_TOKEN)[0].strip() for x in conts] for conts in got]
    for temp, n in plan:
        got = engine.complete(texts, n, temp, max_new_tokens, stop_at_sep=True)
        for i, conts in enumerate(got):
            out[i].extend(x.split(SEP_TOKEN)[0].strip() for x in conts)
    return out


class HFEngine:
    """In-process sampling from a transformers causal LM, batched, reusing each text's KV cache.

    Every text is prefilled once; its KV cache is then copied to the ``n`` samples drawn from
    it (``DynamicCache.batch_repeat_interleave``), which may each use their own temperature
    (:meth:`complete_mixed`: the C candidates of a beam over several temperatures share one
    prefill). Texts are batched in order of token length (``sort_by_length``): a batch's KV
    cache is as long as its longest text and every decoding step reads all of it, so mixing
    long and short prompts wastes time (measured by ``benchmarks/bench_align.py``). Finished
    rows leave the batch. Sampling is softmax sampling at the temperature, then nucleus
    filtering when ``top_p`` < 1 (evaluation engines use the gateway's serving decoding; pair
    generation samples plainly); no top-k; temperature 0 is greedy. When a stop marker is not
    a single token of the model's vocabulary, ``model.generate`` with ``stop_strings`` is used
    instead.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        device: str = "cpu",
        batch_size: int = 256,
        seed: int = 0,
        sort_by_length: bool = True,
        top_p: float = 1.0,
    ) -> None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p={top_p} (accepted: 0 < top_p <= 1)")
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.batch_size = batch_size
        self.sort_by_length = sort_by_length
        self.top_p = top_p
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
        return self.complete_mixed(texts, [temperature] * n, max_new_tokens, stop_at_sep)

    def complete_mixed(
        self,
        texts: Sequence[str],
        temperatures: Sequence[float],
        max_new_tokens: int,
        stop_at_sep: bool,
    ) -> list[list[str]]:
        """``len(temperatures)`` samples per text, sample j drawn at ``temperatures[j]``."""
        import torch

        n = len(temperatures)
        if n == 0:
            return [[] for _ in texts]
        if stop_at_sep and self._sep_id is None:
            return self._generate_fallback(texts, temperatures, max_new_tokens)
        tok, model = self.tokenizer, self.model
        stops = [tok.eos_token_id, *([self._sep_id] if stop_at_sep else [])]
        per = max(1, self.batch_size // n)
        was_training = model.training
        model.eval()
        self._calls += 1
        gen = torch.Generator(device=self.device)
        gen.manual_seed(self.seed * 1_000_003 + self._calls)
        out: list[list[str]] = [[] for _ in texts]
        try:
            with torch.no_grad():
                for idx, chunk in self._batches(texts, per):
                    rows = self._sample(chunk, temperatures, max_new_tokens, stops, gen)
                    for j, i in enumerate(idx):
                        out[i] = rows[j * n : (j + 1) * n]
        finally:
            if was_training:
                model.train()
        return out

    def _batches(self, texts: Sequence[str], per: int) -> Iterator[tuple[list[int], list[str]]]:
        """Batches of at most ``per`` texts in :meth:`_length_order`: (indices, texts)."""
        order = self._length_order(texts)
        for lo in range(0, len(order), per):
            idx = order[lo : lo + per]
            yield idx, [texts[i] for i in idx]

    def _length_order(self, texts: Sequence[str]) -> list[int]:
        """Text indices by token length, so each batch pads (and caches) little: a batch's KV
        cache is as long as its longest prompt, and decoding reads all of it every step."""
        if not self.sort_by_length or len(texts) <= 1:
            return list(range(len(texts)))
        lengths = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return sorted(range(len(texts)), key=lambda i: len(lengths[i]))

    def _sample(
        self,
        texts: list[str],
        temperatures: Sequence[float],
        max_new_tokens: int,
        stops: list[int],
        gen: Any,
    ) -> list[str]:
        """``len(temperatures)`` samples of each text, decoded by the gateway's batched loop
        (:func:`gqr_serving.backends.batching.decode`): one prefill per text, its KV cache
        copied to the samples, temperature then top-p (``self.top_p``; 1 = off) like the
        gateway, all rows drawing from ``gen``."""
        from gqr_serving.backends.base import GenerationParams
        from gqr_serving.backends.batching import decode

        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else stops[0]
        ids = [list(tok(t, return_token_type_ids=False).input_ids) or [pad] for t in texts]
        rows = [
            GenerationParams(max_new_tokens=max_new_tokens, temperature=t, top_p=self.top_p)
            for _ in texts
            for t in temperatures
        ]
        produced: list[list[int]] = [[] for _ in rows]
        decode(
            self.model,
            ids,
            rows,
            [gen] * len(rows),
            [max_new_tokens] * len(rows),
            stops,
            pad,
            self.device,
            None,
            produced,
            lambda r: None,
            repeat=len(temperatures),
        )
        return [d.strip() for d in tok.batch_decode(produced, skip_special_tokens=True)]

    def _generate_fallback(
        self, texts: Sequence[str], temperatures: Sequence[float], max_new_tokens: int
    ) -> list[list[str]]:
        """``model.generate`` with ``stop_strings`` (a stop marker of several tokens)."""
        import torch

        tok, model = self.tokenizer, self.model
        tok.padding_side = "left"
        out: list[list[str]] = [[] for _ in texts]
        model_was_training = model.training
        model.eval()
        for temp, n in spread_counts(temperatures):
            self._calls += 1
            torch.manual_seed(self.seed * 1_000_003 + self._calls)
            extra: dict[str, Any] = {"stop_strings": [SEP_TOKEN], "tokenizer": tok}
            if temp > 0:
                extra.update(do_sample=True, temperature=temp, top_k=0, top_p=self.top_p)
            else:
                extra.update(do_sample=False)
            per = max(1, self.batch_size // n)
            with torch.no_grad():
                for idx, chunk in self._batches(texts, per):
                    enc = tok(
                        chunk, return_tensors="pt", padding=True, return_token_type_ids=False
                    ).to(self.device)
                    gen = model.generate(
                        **enc,
                        max_new_tokens=max_new_tokens,
                        num_return_sequences=n,
                        eos_token_id=[tok.eos_token_id],
                        pad_token_id=tok.pad_token_id,
                        **extra,
                    )
                    new = gen[:, enc["input_ids"].shape[1] :]
                    decoded = tok.batch_decode(new, skip_special_tokens=True)
                    for j, i in enumerate(idx):
                        out[i].extend(d.strip() for d in decoded[j * n : (j + 1) * n])
        if model_was_training:
            model.train()
        return out


def spread_counts(temperatures: Sequence[float]) -> list[tuple[float, int]]:
    """Group a per-sample temperature list into (temperature, count), in first-seen order."""
    counts: dict[float, int] = {}
    for t in temperatures:
        counts[t] = counts.get(t, 0) + 1
    return list(counts.items())


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
