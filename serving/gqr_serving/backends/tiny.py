"""Build a real, tiny, random-init causal LM with a tokenizer trained on the spot.

No model hub is needed: the tokenizer (byte-level BPE) is trained with ``tokenizers`` on a
small corpus (the built-in presets' prompts plus any text given), the model is a 2-layer
GPT-2 from a config. Used by tests, benchmarks and ``gqr-gateway --tiny-model``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

_WORDS = [
    "what",
    "is",
    "how",
    "to",
    "best",
    "cheap",
    "near",
    "me",
    "price",
    "history",
    "tips",
    "reviews",
    "weather",
    "tea",
    "green",
    "coffee",
    "paris",
    "tokyo",
    "rome",
    "flights",
    "hotels",
    "python",
    "guitar",
    "pizza",
    "recipe",
    "benefits",
    "vs",
    "near",
    "today",
]


def _default_corpus() -> list[str]:
    from gqr_serving.prompt import PromptRequest, list_presets, load_preset, render
    from gqr_serving.records import SideInfo

    texts = [" ".join(_WORDS), " <SEP> ".join(_WORDS[:6])]
    for name in list_presets():
        preset = load_preset(name)
        side = SideInfo(history=["tea types"], ai_response="Tea is a drink.", prefix="what")
        try:
            texts.append(render(preset, PromptRequest(task=name, query="what", side_info=side)))
        except ValueError:
            continue
    return texts


def build_tiny_lm(
    out_dir: str | Path,
    corpus: Iterable[str] = (),
    *,
    vocab_size: int = 600,
    layers: int = 2,
    hidden: int = 64,
    max_positions: int = 2048,
    seed: int = 0,
) -> Path:
    """Write a tiny GPT-2 + tokenizer to ``out_dir`` (``save_pretrained`` format)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = [*_default_corpus(), *corpus]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok.add_tokens(["<SEP>"])  # a normal token: decoding keeps it in the text
    fast_cls: Any = PreTrainedTokenizerFast
    fast = fast_cls(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.save_pretrained(str(out))
    torch.manual_seed(seed)
    config_cls: Any = GPT2Config
    model_cls: Any = GPT2LMHeadModel
    config = config_cls(
        vocab_size=len(fast),
        n_positions=max_positions,
        n_embd=hidden,
        n_layer=layers,
        n_head=2,
        bos_token_id=fast.eos_token_id,
        eos_token_id=fast.eos_token_id,
    )
    model_cls(config).save_pretrained(str(out))
    return out
