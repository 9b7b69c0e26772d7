"""One iterative-DPO iteration on a ~0.5B-parameter model shape, LoRA + bf16, on CUDA:
generation tokens/s, DPO training tokens/s and peak GPU memory; the last stdout line is a JSON.

    python -m benchmarks.bench_dpo_gpu                 # Qwen2-0.5B shape on CUDA
    python -m benchmarks.bench_dpo_gpu --tiny          # a few-M-parameter smoke run on CPU

(from the repository root, as a module: the toy world comes from ``testsupport``).

The shape is Qwen2-0.5B's (24 layers x 896, GQA 14/2 heads, MLP 4864, vocabulary 151,936, tied
embeddings): random init, since this project never reaches a model hub. Token ids beyond the
word-level tokenizer trained on the fly are suppressed at generation; every matrix product still
has the real shape, the LM head included. Steps, each timed:

1. a short full-weight SFT (bf16 mixed precision) on the toy world's annotated lists, so the
   random model learns the output format and beam search finds parseable candidates;
2. raw generation throughput (fixed 64 new tokens, batch 256 sequences, sampling);
3. pair building as ``dpo-iterate`` does it: CTR-guided beam search (Algorithm 1) + rejected
   sampling + overlap filter + eq. 6, with the toy world's known list scorer;
4. one DPO round with TRL ``DPOTrainer`` (LoRA r=16, reference = adapters disabled, bf16);
5. AEC on a fixed test set before and after the round.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

try:
    from testsupport.toyworld import PRESET, known_scorer, requests, sft_rows
except ModuleNotFoundError as exc:  # run as a script: benchmarks/ alone is on sys.path
    raise SystemExit(
        f"{exc}: run python -m benchmarks.bench_dpo_gpu from the repository root"
    ) from None

QWEN2_05B = dict(
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    vocab_size=151_936,
)
TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    vocab_size=0,  # the tokenizer's size
)


def build(tok: Any, shape: dict[str, int], seed: int = 0) -> Any:
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    vocab = shape["vocab_size"] or len(tok)
    cfg = tf.Qwen2Config(
        **{**shape, "vocab_size": vocab},
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
    )
    model = tf.Qwen2ForCausalLM(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    if vocab > len(tok):
        model.generation_config.suppress_tokens = list(range(len(tok), vocab))
    return model


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def n_tokens(tok: Any, texts: list[str]) -> int:
    return sum(len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="Tiny shape on CPU (a smoke run).")
    p.add_argument("--sft-rows", type=int, default=4000)
    p.add_argument("--sft-epochs", type=float, default=2.0)
    p.add_argument("--prompts", type=int, default=256, help="Training prompts of the round.")
    p.add_argument("--test-prompts", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32, help="DPO pairs per step.")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="Dense bf16 peak (H100).")
    args = p.parse_args(argv)

    import torch

    from gqr_training.align import tinylm
    from gqr_training.align.beam import BeamConfig
    from gqr_training.align.data import make_task
    from gqr_training.align.dpo import PrefOptions, train_preferences
    from gqr_training.align.generate import HFEngine
    from gqr_training.align.metrics import evaluate
    from gqr_training.align.overlap import OverlapFilter
    from gqr_training.align.pairs import PairConfig, build_pairs
    from gqr_training.align.sft import SFTOptions, train_sft

    cuda = torch.cuda.is_available() and not args.tiny
    device = "cuda" if cuda else "cpu"
    if not cuda and not args.tiny:
        print("no CUDA device here: running the --tiny shape on CPU instead", file=sys.stderr)
    shape = QWEN2_05B if cuda else TINY
    if not cuda:
        args.sft_rows, args.prompts, args.test_prompts = 240, 16, 8
    out: dict[str, Any] = {"device": torch.cuda.get_device_name() if cuda else "cpu"}
    rows = sft_rows(args.sft_rows)
    prompts = [r["prompt"] for r in rows]
    tok = tinylm.tokenizer_for_rows(rows)
    model = build(tok, shape).to(device)
    out["parameters"] = tinylm.n_params(model)
    print(f"model: {out['parameters']:,} parameters on {out['device']}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        # 1. SFT (full weights, bf16 mixed precision)
        opts = SFTOptions(
            epochs=args.sft_epochs if cuda else 6.0,
            lr=3e-4 if cuda else 3e-3,
            batch_size=32 if cuda else 16,
            device=device,
            bf16=cuda,
            progress=False,
            logging_steps=20,
        )
        sft_tokens = n_tokens(tok, [r["prompt"] + " " + r["completion"] for r in rows])
        sync(device)
        t = time.perf_counter()
        model, sft_m = train_sft(model, tok, rows, Path(tmp) / "sft", opts)
        sync(device)
        dt = time.perf_counter() - t
        out["sft"] = {
            "seconds": dt,
            "tokens_per_s": sft_tokens * opts.epochs / dt,
            "first_loss": sft_m["first_loss"],
            "last_loss": sft_m["last_loss"],
        }
        print(f"sft: {json.dumps(out['sft'])}", flush=True)
        if cuda:
            model = model.to(torch.bfloat16)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

        # 2. raw generation throughput: fixed length, sampling, batch 256 sequences
        enc = tok(prompts[:32], return_tensors="pt", padding=True, return_token_type_ids=False)
        enc = enc.to(device)
        new = 64 if cuda else 8
        model.eval()
        with torch.no_grad():
            model.generate(**enc, max_new_tokens=4, do_sample=True)  # warm-up
            sync(device)
            t = time.perf_counter()
            gen = model.generate(
                **enc,
                max_new_tokens=new,
                min_new_tokens=new,
                do_sample=True,
                num_return_sequences=8,
                pad_token_id=tok.pad_token_id,
            )
            sync(device)
            dt = time.perf_counter() - t
        made = int(gen.shape[0]) * new
        out["generation"] = {
            "sequences": int(gen.shape[0]),
            "prompt_tokens": int(enc["input_ids"].shape[1]),
            "new_tokens_each": new,
            "tokens_per_s": made / dt,
            "seconds": dt,
        }
        print(f"generation: {json.dumps(out['generation'])}", flush=True)

        # 3. pairs, as dpo-iterate builds them
        tasks = [make_task(PRESET, r) for r in requests(args.prompts, seed=1)]
        test = [make_task(PRESET, r) for r in requests(args.test_prompts, seed=2)]
        eng = HFEngine(model, tok, device, batch_size=512 if cuda else 64)
        t = time.perf_counter()
        before = evaluate(eng, PRESET, test, known_scorer, None, 0.7)
        out["aec_before"] = before["aec"]
        out["eval_seconds"] = time.perf_counter() - t
        flt = OverlapFilter("token")
        cfg = PairConfig(beam=BeamConfig(beam_size=4, candidates=4), rejected_budget=8)
        t = time.perf_counter()
        pairs, stats = build_pairs(eng, PRESET, tasks, known_scorer, cfg, flt)
        sync(device)
        out["pairs"] = {**stats.as_dict(), "seconds": time.perf_counter() - t}
        print(f"pairs: {json.dumps(out['pairs'])}", flush=True)
        pair_rows = [x.row() for x in pairs]
        if not pair_rows:
            # The SFT did not teach the format well enough: train on annotator-vs-sample pairs
            # so the DPO throughput is still measured (reported as such).
            out["pairs_source"] = "synthetic (annotator list vs. its reversal)"
            pair_rows = [
                {
                    "prompt": r["prompt"],
                    "chosen": r["completion"],
                    "rejected": " ".join(reversed(r["completion"].split())),
                }
                for r in rows[: args.prompts]
            ]
        else:
            out["pairs_source"] = "beam search vs rejected samples"

        # 4. one DPO round: LoRA, bf16
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        popts = PrefOptions(
            lr=5e-5 if cuda else 2e-4,
            epochs=1.0,
            batch_size=args.batch_size if cuda else 8,
            lora=True,
            device=device,
            bf16=cuda,
            progress=False,
            max_length=256,
        )
        dpo_tokens = n_tokens(
            tok,
            [x["prompt"] + " " + x["chosen"] for x in pair_rows]
            + [x["prompt"] + " " + x["rejected"] for x in pair_rows],
        )
        sync(device)
        t = time.perf_counter()
        model, dm = train_preferences(model, tok, pair_rows, Path(tmp) / "dpo", popts)
        sync(device)
        dt = time.perf_counter() - t
        out["dpo"] = {
            "pairs": len(pair_rows),
            "seconds": dt,
            "tokens_per_s": dpo_tokens * popts.epochs / dt,
            "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            **dm,
        }
        print(f"dpo: {json.dumps(out['dpo'])}", flush=True)

        # 5. AEC after the round
        after = evaluate(
            HFEngine(model, tok, device, batch_size=512 if cuda else 64),
            PRESET,
            test,
            known_scorer,
            None,
            0.7,
        )
        out["aec_after"] = after["aec"]
        if cuda:
            out["peak_gpu_gib_overall"] = torch.cuda.max_memory_allocated() / 2**30
            # Training FLOPs of the LoRA round: forward of policy + reference, backward of the
            # policy's activations (no weight gradients for the frozen base): about 2+2+2 = 6
            # FLOPs per parameter per token (a rough, commonly used count).
            achieved = 6 * out["parameters"] * out["dpo"]["tokens_per_s"] / 1e12
            out["dpo"]["approx_tflops"] = achieved
            out["dpo"]["fraction_of_peak"] = achieved / args.peak_tflops
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
