"""An in-process transformers causal LM: the embedded default and the tests' real model.

Generation runs in a worker thread, one call at a time (a CPU model gains nothing from
interleaving), so the event loop keeps serving while the model works.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from gqr_serving.backends.base import BackendError, GenerationParams, PromptInput


class LocalBackend:
    """A model folder (``save_pretrained`` format: weights + tokenizer), loaded lazily."""

    def __init__(self, model_dir: str | Path, *, device: str = "cpu", threads: int = 0) -> None:
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"{self.model_dir} holds no transformers model (no config.json); "
                "pass a folder written by save_pretrained"
            )
        self.name = f"local:{self.model_dir.name}"
        self.device, self.threads = device, threads
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    def load(self) -> None:
        """Load weights and tokenizer now (otherwise the first call does)."""
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.threads:
            torch.set_num_threads(self.threads)
        load_tokenizer: Any = AutoTokenizer.from_pretrained
        load_model: Any = AutoModelForCausalLM.from_pretrained
        self._tokenizer = load_tokenizer(str(self.model_dir))
        model = load_model(str(self.model_dir))
        self._model = model.to(self.device).eval()

    async def generate(self, prompt: PromptInput, params: GenerationParams) -> str:
        try:
            return await asyncio.to_thread(self._generate, prompt.text, params)
        except BackendError:
            raise
        except Exception as exc:  # a model error is a backend error, never a 500
            raise BackendError(f"{self.name}: {type(exc).__name__}: {exc}", "error") from exc

    def _generate(self, text: str, params: GenerationParams) -> str:
        import torch

        with self._lock:
            self._load_locked()
            tok, model = self._tokenizer, self._model
            limit = int(getattr(model.config, "max_position_embeddings", 1024))
            keep = max(1, limit - params.max_new_tokens)
            ids = tok(text, return_tensors="pt").input_ids[:, -keep:].to(self.device)
            sample = params.temperature > 0
            kwargs: dict[str, Any] = {
                "max_new_tokens": params.max_new_tokens,
                "do_sample": sample,
                "pad_token_id": tok.pad_token_id
                if tok.pad_token_id is not None
                else tok.eos_token_id,
                "attention_mask": torch.ones_like(ids),
            }
            if sample:
                kwargs["temperature"] = params.temperature
                kwargs["top_p"] = params.top_p
                if params.seed is not None:
                    torch.manual_seed(params.seed)  # under the lock: no other call races it
            with torch.no_grad():
                out = model.generate(ids, **kwargs)
            completion = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        for stop in params.stop:
            completion = completion.split(stop, 1)[0]
        return str(completion)

    async def aclose(self) -> None:
        with self._lock:
            self._model = self._tokenizer = None
