"""An in-process transformers causal LM: the embedded default and the tests' real model.

Concurrent calls are micro-batched, the way TGI's continuous batching serves a server's
requests: each call joins a queue; one worker thread takes up to ``max_batch`` queued calls,
waiting at most ``batch_wait_ms`` after the first for more to arrive, and decodes them together
in one batched loop with a KV cache (:func:`gqr_serving.backends.batching.sample_batch`), each
row with its own max_new_tokens, temperature, top_p and seed (a seeded row's text does not
depend on its batchmates). Each call is answered as soon as its own row ends; calls that
arrive while a batch decodes wait for the next batch (unlike TGI, a running batch takes in no
new rows). The event loop keeps serving meanwhile. A model error fails that batch's
unanswered calls with :class:`BackendError` and the worker goes on; ``aclose`` stops the
worker and fails the calls not answered yet. ``max_batch=1`` serves one call at a time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gqr_serving.backends.base import BackendError, GenerationParams, PromptInput


@dataclass(frozen=True)
class _Call:
    text: str
    params: GenerationParams
    future: concurrent.futures.Future[str]


_STOP = object()
"""Queued by ``aclose`` after the last call: the worker exits when it takes it."""


class LocalBackend:
    """A model folder (``save_pretrained`` format: weights + tokenizer), loaded lazily."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "cpu",
        threads: int = 0,
        max_batch: int = 32,
        batch_wait_ms: float = 2.0,
    ) -> None:
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"{self.model_dir} holds no transformers model (no config.json); "
                "pass a folder written by save_pretrained"
            )
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.name = f"local:{self.model_dir.name}"
        self.device, self.threads = device, threads
        self.max_batch = max_batch
        self.batch_wait_s = max(0.0, batch_wait_ms) / 1000
        self.batches_run = 0
        """Batched decode runs so far (each serves 1 to ``max_batch`` calls)."""
        self.calls_run = 0
        """Calls that went into those runs."""
        self._load_lock = threading.Lock()
        self._state_lock = threading.Lock()  # the worker, its queue, closing
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._closing = False
        self._model: Any = None
        self._tokenizer: Any = None

    def load(self) -> None:
        """Load weights and tokenizer now (otherwise the first batch does)."""
        with self._load_lock:
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
        future = self._submit(prompt.text, params)
        try:
            return await asyncio.wrap_future(future)
        except BackendError:
            raise
        except Exception as exc:  # a model error is a backend error, never a 500
            raise BackendError(f"{self.name}: {type(exc).__name__}: {exc}", "error") from exc

    def _submit(self, text: str, params: GenerationParams) -> concurrent.futures.Future[str]:
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        with self._state_lock:
            if self._closing:
                raise BackendError(f"{self.name}: closing", "error")
            if self._worker is None or not self._worker.is_alive():
                self._queue, self._stop = queue.SimpleQueue(), threading.Event()
                self._worker = threading.Thread(
                    target=self._serve,
                    args=(self._queue, self._stop),
                    name=f"gqr-{self.name}",
                    daemon=True,
                )
                self._worker.start()
            self._queue.put(_Call(text, params, future))
        return future

    def _serve(self, calls: queue.SimpleQueue[object], stop: threading.Event) -> None:
        """The worker: take a batch, decode it, answer its calls; until ``_STOP``."""
        while True:
            item = calls.get()
            if item is _STOP:
                return
            assert isinstance(item, _Call)
            batch, ended = [item], False
            deadline = time.monotonic() + self.batch_wait_s
            while len(batch) < self.max_batch:
                left = deadline - time.monotonic()
                try:
                    more = calls.get(timeout=left) if left > 0 else calls.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    ended = True
                    break
                assert isinstance(more, _Call)
                batch.append(more)
            if stop.is_set():
                self._fail(batch, self._closed())
            else:
                self._run(batch, stop)
            if ended:
                return

    def _run(self, batch: list[_Call], stop: threading.Event) -> None:
        from gqr_serving.backends.batching import Stopped, sample_batch

        # A call cancelled while queued (its caller timed out) is dropped before decoding.
        batch = [c for c in batch if c.future.set_running_or_notify_cancel()]
        if not batch:
            return
        self.batches_run += 1
        self.calls_run += len(batch)
        try:
            with self._load_lock:
                self._load_locked()
                model, tok = self._model, self._tokenizer
            sample_batch(
                model,
                tok,
                [c.text for c in batch],
                [c.params for c in batch],
                self.device,
                should_stop=stop.is_set,
                on_row=lambda i, text: batch[i].future.set_result(text),  # answered when done
            )
        except Stopped:
            self._fail(batch, self._closed())
        except Exception as exc:  # a model error fails this batch's open calls, not the worker
            self._fail(batch, BackendError(f"{self.name}: {type(exc).__name__}: {exc}", "error"))

    def _closed(self) -> BackendError:
        return BackendError(f"{self.name}: closed", "error")

    @staticmethod
    def _fail(batch: list[_Call], error: BackendError) -> None:
        for call in batch:
            if call.future.done():
                continue
            with contextlib.suppress(concurrent.futures.InvalidStateError):  # cancelled meanwhile
                call.future.set_exception(error)

    async def aclose(self) -> None:
        """Stop the worker (a running batch stops at its next step), fail every call not
        answered with :class:`BackendError`, release the model. A later call starts afresh."""
        with self._state_lock:
            self._closing = True
            worker, calls, stop = self._worker, self._queue, self._stop
            self._worker = None
            stop.set()
        try:
            pending: list[_Call] = []
            while True:
                try:
                    item = calls.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Call):
                    pending.append(item)
            self._fail(pending, self._closed())
            calls.put(_STOP)
            await asyncio.to_thread(self._release, worker)
        finally:
            with self._state_lock:
                self._closing = False

    def _release(self, worker: threading.Thread | None) -> None:
        if worker is not None:
            worker.join()
        with self._load_lock:
            self._model = self._tokenizer = None
