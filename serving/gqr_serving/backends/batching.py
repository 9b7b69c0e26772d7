"""One batched decode: several prompts, each with its own decoding parameters, in one loop.

The prompts are left-padded into one batch (attention mask, position ids from the mask's
cumulative sum), prefilled once, then decoded one token per step with the KV cache; a row
leaves the batch (``cache.batch_select_indices``) when it emits an end-of-sequence token or
reaches its own ``max_new_tokens``. Per row: temperature (0 is greedy), top-p (nucleus;
1.0 is off) and seed. A row with a seed draws from its own ``torch.Generator`` seeded with it,
so its text does not depend on what else shares the batch (up to the float noise of padding);
rows without one share ``generator`` (``None``: torch's default generator). Sampling is
temperature then top-p, as TGI does by default: extras a model's ``generation_config`` may
carry (``top_k``, ``repetition_penalty``) are not applied. Stop strings are cut from the
decoded text.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gqr_serving.backends.base import GenerationParams


class Stopped(RuntimeError):
    """``should_stop`` said to give up (the backend is closing)."""


def prompt_ids(tokenizer: Any, text: str, keep: int, fallback_id: int) -> list[int]:
    """``text``'s token ids, left-truncated to the last ``keep`` (never empty)."""
    ids = list(tokenizer(text).input_ids)[-keep:] if keep > 0 else []
    return ids or [fallback_id]


def eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every id that ends a row: the tokenizer's EOS and the model's generation_config ones."""
    out: set[int] = set()
    if tokenizer.eos_token_id is not None:
        out.add(int(tokenizer.eos_token_id))
    cfg = getattr(model, "generation_config", None)
    extra = getattr(cfg, "eos_token_id", None)
    if isinstance(extra, int):
        out.add(extra)
    elif isinstance(extra, list | tuple):
        out.update(int(x) for x in extra)
    return sorted(out)


def top_p_filter(logits: Any, top_p: Any) -> Any:
    """Per-row nucleus filtering (``top_p`` a float tensor, one value a row; >= 1 is off):
    the smallest set of most likely tokens whose probability reaches ``top_p`` stays, the rest
    go to -inf. Same rule as transformers' ``TopPLogitsWarper`` (the top token always stays)."""
    import torch

    sorted_logits, order = torch.sort(logits, descending=False, dim=-1)
    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    drop = cum <= (1 - top_p).unsqueeze(-1)
    drop[:, -1] = False
    drop &= (top_p < 1).unsqueeze(-1)
    return logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))


def next_tokens(logits: Any, rows: Sequence[GenerationParams], gens: Sequence[Any]) -> Any:
    """One token per row: greedy where temperature <= 0, else sampled after temperature and
    top-p; ``gens[i]`` is row i's generator (rows sharing one are drawn in one call)."""
    import torch

    dev = logits.device
    temps = torch.tensor([p.temperature for p in rows], device=dev, dtype=torch.float32)
    greedy = temps <= 0
    nxt = logits.argmax(-1)
    if bool(greedy.all()):
        return nxt
    tops = torch.tensor([p.top_p for p in rows], device=dev, dtype=torch.float32)
    scaled = logits / torch.where(greedy, 1.0, temps).unsqueeze(-1)
    if bool((tops < 1).any()):  # the sort over the vocabulary only where a row needs it
        scaled = top_p_filter(scaled, tops)
    probs = torch.softmax(scaled, dim=-1)
    groups: dict[int, tuple[Any, list[int]]] = {}
    for i, (p, g) in enumerate(zip(rows, gens, strict=True)):
        if p.temperature > 0:
            groups.setdefault(id(g), (g, []))[1].append(i)
    for g, idx in groups.values():
        at = torch.tensor(idx, device=dev)
        nxt[at] = torch.multinomial(probs[at], 1, generator=g).squeeze(-1)
    return nxt


def row_generator(params: GenerationParams, device: str, shared: Any) -> Any:
    """A sampled row's own generator, seeded with its seed (any int: taken modulo 2**64, the
    range torch accepts); ``shared`` for an unseeded or greedy row."""
    import torch

    if params.seed is None or params.temperature <= 0:
        return shared
    return torch.Generator(device=device).manual_seed(int(params.seed) % (1 << 64))


def ready_mask_ok(model: Any) -> bool:
    """Whether a decode step may get its attention mask ready-made, 4D and additive: eager
    or SDPA attention, and no sliding window shorter than the model's context (that window
    would be part of the mask transformers builds)."""
    config = model.config
    if getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return False
    window = getattr(config, "sliding_window", None)
    limit = int(getattr(config, "max_position_embeddings", 1024))
    return window is None or int(window) >= limit


def sample_batch(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    rows_params: Sequence[GenerationParams],
    device: str = "cpu",
    *,
    generator: Any = None,
    should_stop: Callable[[], bool] | None = None,
    on_row: Callable[[int, str], None] | None = None,
) -> list[str]:
    """The completion text of each prompt under its own parameters, decoded as one batch.

    Prompts longer than the model's ``max_position_embeddings - max_new_tokens`` keep their
    last tokens; a row's ``max_new_tokens`` is capped so prompt + completion fit the model.
    ``should_stop`` is asked before every step; when it says yes, :class:`Stopped` is raised.
    ``on_row(i, text)`` is called as soon as row i is finished (its caller need not wait for
    the batch's longest row).
    """
    if len(prompts) != len(rows_params):
        raise ValueError("one GenerationParams per prompt")
    tok, dev = tokenizer, device
    limit = int(getattr(model.config, "max_position_embeddings", 1024))
    stops = eos_ids(model, tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else (stops or [0])[0]
    bos = tok.bos_token_id if tok.bos_token_id is not None else pad
    ids = [
        prompt_ids(tok, text, max(1, limit - p.max_new_tokens), bos)
        for text, p in zip(prompts, rows_params, strict=True)
    ]
    budget = [
        max(0, min(p.max_new_tokens, limit - len(x))) for x, p in zip(ids, rows_params, strict=True)
    ]
    produced: list[list[int]] = [[] for _ in prompts]
    out = [""] * len(prompts)

    def finish(i: int) -> None:
        text = str(tok.decode(produced[i], skip_special_tokens=True))
        for stop in rows_params[i].stop:
            if stop:
                text = text.split(stop, 1)[0]
        out[i] = text
        if on_row is not None:
            on_row(i, text)

    live = [i for i, b in enumerate(budget) if b > 0]
    for i, b in enumerate(budget):
        if b <= 0:
            finish(i)
    if live:
        decode(
            model,
            [ids[i] for i in live],
            [rows_params[i] for i in live],
            [row_generator(rows_params[i], dev, generator) for i in live],
            [budget[i] for i in live],
            stops,
            pad,
            dev,
            should_stop,
            [produced[i] for i in live],
            lambda r: finish(live[r]),
        )
    return out


def decode(
    model: Any,
    ids: Sequence[Sequence[int]],
    rows: Sequence[GenerationParams],
    gens: Sequence[Any],
    budget: Sequence[int],
    stops: Sequence[int],
    pad: int,
    dev: str,
    should_stop: Callable[[], bool] | None,
    produced: list[list[int]],
    finished: Callable[[int], None],
    repeat: int = 1,
) -> None:
    """Prefill the left-padded batch, then one token per step; appends to ``produced`` and
    calls ``finished(r)`` when row r is done. The loop behind :func:`sample_batch` (the
    gateway's in-process backend) and the alignment loop's sampler
    (``gqr_training.align.generate.HFEngine``).

    ``repeat`` > 1: each prompt of ``ids`` is prefilled once and its KV cache copied to
    ``repeat`` consecutive rows (``DynamicCache.batch_repeat_interleave``), so ``rows``,
    ``gens``, ``budget`` and ``produced`` have ``len(ids) * repeat`` entries, row
    ``i * repeat + j`` being prompt i's sample j (the C candidates of a beam share one prefill).
    """
    import torch

    input_ids, mask, pos = _left_padded(ids, pad, dev)
    if should_stop is not None and should_stop():
        raise Stopped("stopped")
    with torch.inference_mode():
        batch = _Batch.prefill(model, input_ids, mask, pos, dev, repeat)
        stop_ids = torch.tensor(stops or [-1], device=dev)
        alive = list(range(len(ids) * repeat))  # batch row -> index into rows/produced
        while True:
            nxt = next_tokens(batch.logits, [rows[r] for r in alive], [gens[r] for r in alive])
            going = _take_tokens(nxt, stop_ids, alive, produced, budget, finished)
            if not going:
                return
            if should_stop is not None and should_stop():
                raise Stopped("stopped")
            if len(going) < len(alive):
                nxt = batch.keep(nxt, going)
                alive = [alive[j] for j in going]
            batch.step(model, nxt)


def _left_padded(ids: Sequence[Sequence[int]], pad: int, dev: str) -> tuple[Any, Any, Any]:
    """Input ids left-padded to one width, their attention mask, and position ids counted
    from each row's first real token."""
    import torch

    width = max(len(x) for x in ids)
    input_ids = torch.tensor([[pad] * (width - len(x)) + list(x) for x in ids], device=dev)
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=dev)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return input_ids, mask, pos


def _take_tokens(
    nxt: Any,
    stop_ids: Any,
    alive: Sequence[int],
    produced: list[list[int]],
    budget: Sequence[int],
    finished: Callable[[int], None],
) -> list[int]:
    """Appends each live row's token; a row that emitted a stop id or spent its budget is
    finished. Returns the batch positions of the rows that go on."""
    import torch

    going: list[int] = []
    ended = torch.isin(nxt, stop_ids).tolist()
    for j, (r, t) in enumerate(zip(alive, nxt.tolist(), strict=True)):
        produced[r].append(t)
        if not ended[j] and len(produced[r]) < budget[r]:
            going.append(j)
        else:
            finished(r)
    return going


@dataclass
class _Batch:
    """The decoding batch's state: KV cache, last logits, attention mask (2D, and 4D additive
    where :func:`ready_mask_ok`), and each row's last position."""

    cache: Any
    logits: Any
    mask: Any
    last: Any
    add: Any
    dev: str
    cache_arg: str = "cache"
    """The forward pass's name for the KV cache (and its output's): ``cache`` since
    transformers 5 renamed it, ``past_key_values`` before (the old name now warns)."""

    @classmethod
    def prefill(
        cls, model: Any, input_ids: Any, mask: Any, pos: Any, dev: str, repeat: int
    ) -> _Batch:
        """One forward pass over the prompts; with ``repeat`` > 1 each row's state is copied
        to ``repeat`` consecutive rows."""
        import torch

        extra: dict[str, Any] = {}
        takes = inspect.signature(model.forward).parameters
        cache_arg = "cache" if "cache" in takes else "past_key_values"
        if "logits_to_keep" in takes:
            # The prefill's last position only: no (B, L, vocab) logits.
            extra["logits_to_keep"] = 1
        out = model(
            input_ids=input_ids, attention_mask=mask, position_ids=pos, use_cache=True, **extra
        )
        cache, logits = getattr(out, cache_arg), out.logits[:, -1, :].float()
        last = pos[:, -1]
        if repeat > 1:
            cache.batch_repeat_interleave(repeat)
            logits, mask, last = (x.repeat_interleave(repeat, dim=0) for x in (logits, mask, last))
        # A padded batch's decode steps pass the mask ready-made (4D, additive): transformers
        # otherwise rebuilds it from the 2D mask at every step, which costs more than the
        # forward pass of a small model on a CPU. Only where that mask is all it needs.
        add = None
        if ready_mask_ok(model) and not bool(mask.all()):
            add = torch.zeros(mask.shape, dtype=model.dtype, device=dev)
            add = add.masked_fill(mask == 0, torch.finfo(model.dtype).min)[:, None, None, :]
        return cls(cache, logits, mask, last, add, dev, cache_arg)

    def keep(self, nxt: Any, going: list[int]) -> Any:
        """Only the batch rows ``going`` stay (cache included); returns their tokens."""
        import torch

        keep = torch.tensor(going, device=self.dev)
        self.cache.batch_select_indices(keep)
        self.mask, self.last = self.mask[keep], self.last[keep]
        self.add = self.add[keep] if self.add is not None else None
        return nxt[keep]

    def step(self, model: Any, nxt: Any) -> None:
        """Feeds one token per row; the cache and logits move one position on."""
        import torch

        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=-1)
        if self.add is not None:
            self.add = torch.cat([self.add, self.add.new_zeros(self.add.shape[0], 1, 1, 1)], dim=-1)
        self.last = self.last + 1
        out = model(
            input_ids=nxt.unsqueeze(-1),
            attention_mask=self.mask if self.add is None else self.add,
            position_ids=self.last.unsqueeze(-1),
            use_cache=True,
            **{self.cache_arg: self.cache},
        )
        self.cache, self.logits = getattr(out, self.cache_arg), out.logits[:, -1, :].float()
