"""Artifacts the real components load, built on the spot (no model hub, no network).

- :func:`build_random_gpt2`: a random-init 2-layer GPT-2 with a byte-level BPE tokenizer trained
  on a small corpus (the built-in presets' prompts plus any text given): an LLM folder for the
  gateway's ``local`` backend and the TGI stand-in. (The training side's from-scratch model,
  with its word-level tokenizer, is ``gqr_training.align.tinylm``.)
- :func:`build_ctr_artifact`: a random-init tiny CTR predictor the kserve server can load.
- :func:`publish_cor`: a small COR artifact, published as the current version.
- :func:`cor_build_tsv`: ``cor-build`` run in process on a session TSV (:func:`sessions_tsv`
  writes one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


def build_random_gpt2(
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


def build_ctr_artifact(out: Path) -> Path:
    """A real (random-init, tiny) CTR artifact the kserve server can load."""
    from gqr_training.ctr.model import CTRConfig, CTRModel, tiny_backbone_config
    from gqr_training.ctr.tokenization import train_wordpiece

    texts = ["what is green tea", "green tea benefits", "matcha vs green tea", "rome hotels"] * 5
    tok = train_wordpiece(texts, 200)
    backbone = tiny_backbone_config(
        "bert", len(tok), int(tok.pad_token_id), hidden=32, layers=1, heads=2, intermediate=64
    )
    CTRModel(CTRConfig(backbone="bert", variant="ctx", backbone_config=backbone)).save(out)
    tok.save_pretrained(str(out / "tokenizer"))
    return out


def publish_cor(root: Path) -> None:
    """Successors of "what is green tea" and "rome weather", published as version v1."""
    from gqr_training.cor.artifact_writer import publish, write_artifact

    rows = [
        ("what is green tea", "green tea benefits", 9),
        ("what is green tea", "matcha vs green tea", 5),
        ("what is green tea", "green tea caffeine", 4),
        ("what is green tea", "how to brew green tea", 2),
        ("rome weather", "rome hotels", 3),
        ("rome weather", "rome in may", 2),
        ("rome weather", "rome weather october", 1),
    ]
    write_artifact(root, "v1", rows, {})
    publish(root, "v1")


def sessions_tsv(path: Path, sessions: Iterable[tuple[str, Sequence[str]]]) -> Path:
    """Write ``(session id, queries)`` as ``cor-build``'s TSV source, ``session<TAB>seconds<TAB>
    query`` lines, the i-th query of a session at second i; returns ``path``."""
    path.write_text("".join(f"{sid}\t{i}\t{q}\n" for sid, qs in sessions for i, q in enumerate(qs)))
    return path


def cor_build_tsv(tsv: Path, root: Path, *flags: str) -> int:
    """``cor-build --source tsv`` in process, from ``tsv`` into the artifact root ``root``, with
    ``flags`` added: its exit code (its JobResult is the last line it prints)."""
    from gqr_training.cor.build import main

    return main(["--source", "tsv", "--input", str(tsv), "--artifact-root", str(root), *flags])
