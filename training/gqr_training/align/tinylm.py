"""A tiny causal LM built from scratch (no hub access): a word-level tokenizer trained on the fly
on the texts it will see, and a small Llama config; or a real local model with ``--model PATH``.

The universal prompt's constant lines (instructions, legends, format rules) repeat in every
prompt, so the tokenizer learns each one as a single added token: a prompt shrinks from about
200 words to about 60 tokens, which is what makes CPU training and generation affordable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEP_TOKEN = "<SEP>"
SPECIALS = {"pad_token": "<pad>", "eos_token": "</s>", "bos_token": "<s>", "unk_token": "<unk>"}


@dataclass
class TinyLMConfig:
    """Size of the from-scratch Llama (a few million parameters at the defaults)."""

    hidden: int = 192
    """Hidden size."""
    layers: int = 4
    """Decoder layers."""
    heads: int = 4
    """Attention heads."""
    intermediate: int = 512
    """MLP width."""
    max_positions: int = 512
    """Longest sequence (prompt + completion) in tokens."""


def constant_lines(prompts: Sequence[str], min_share: float = 0.9) -> list[str]:
    """Lines that occur in at least ``min_share`` of the prompts: the template's fixed text."""
    counts: Counter[str] = Counter()
    for p in prompts:
        counts.update({line.strip() for line in p.splitlines() if line.strip()})
    need = max(1, int(min_share * len(prompts)))
    # Longest first, so a line that contains another shorter constant line wins the match; ties
    # in text order (the counter's order follows set iteration, which differs per process).
    lines = (s for s, c in counts.items() if c >= need and " " in s)
    return sorted(lines, key=lambda s: (-len(s), s))


def train_tokenizer(texts: Iterable[str], fixed_lines: Sequence[str] = ()) -> Any:
    """A WordLevel tokenizer over whitespace-split words, ``<SEP>`` and the template's fixed
    lines as single tokens, wrapped in ``PreTrainedTokenizerFast`` with pad/eos/bos/unk."""
    import importlib

    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tf: Any = importlib.import_module("transformers")

    tok = Tokenizer(models.WordLevel(unk_token=SPECIALS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces, nothing else
    trainer = trainers.WordLevelTrainer(special_tokens=list(SPECIALS.values()), min_frequency=1)
    tok.train_from_iterator(texts, trainer)
    tok.add_tokens([AddedToken(SEP_TOKEN, single_word=False, normalized=False)])
    tok.add_tokens([AddedToken(line, normalized=False) for line in fixed_lines])
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)
    fast.padding_side = "left"
    return fast


def tokenizer_for_rows(rows: Sequence[dict[str, str]]) -> Any:
    """The tokenizer of a tiny LM to be trained on ``{prompt, completion}`` rows: trained on
    each prompt with its completion, the prompts' constant lines as single tokens."""
    return train_tokenizer(
        [r["prompt"] + "\n" + r["completion"] for r in rows],
        constant_lines([r["prompt"] for r in rows]),
    )


def build_model(tokenizer: Any, config: TinyLMConfig | None = None, seed: int = 0) -> Any:
    """A randomly initialised ``LlamaForCausalLM`` sized by ``config`` for ``tokenizer``."""
    import importlib

    import torch

    tf: Any = importlib.import_module("transformers")

    c = config or TinyLMConfig()
    torch.manual_seed(seed)
    cfg = tf.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=c.hidden,
        intermediate_size=c.intermediate,
        num_hidden_layers=c.layers,
        num_attention_heads=c.heads,
        num_key_value_heads=c.heads,
        max_position_embeddings=c.max_positions,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=True,
    )
    model = tf.LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def load(path: str | Path, device: str = "cpu") -> tuple[Any, Any]:
    """A local model folder (weights + tokenizer), e.g. a saved tiny LM or a real LLM."""
    import importlib

    tf: Any = importlib.import_module("transformers")
    tokenizer = tf.AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model = tf.AutoModelForCausalLM.from_pretrained(str(path)).to(device)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def save(model: Any, tokenizer: Any, path: str | Path) -> Path:
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def n_params(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))
