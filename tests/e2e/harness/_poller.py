"""A background polling loop shared by the harness's stand-ins (kubelet, LLM servers,
ConfigMap projection): one daemon thread calls ``step()`` every ``poll_s`` seconds, never dies
on an error (it is recorded in ``events`` for the failure report), and ``stop()`` joins it."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Self


class Poller:
    """Subclasses implement :meth:`step` (one reconcile pass) and may override :meth:`close`."""

    name = "poller"

    def __init__(self, poll_s: float = 0.5) -> None:
        self.poll_s = poll_s
        self.events: deque[str] = deque(maxlen=300)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._last_error = ""

    def note(self, message: str) -> None:
        """Record a line for :meth:`events_text` (time since start, then the message)."""
        self.events.append(f"[{time.monotonic() - self._t0:7.2f}s] {message}")

    def events_text(self) -> str:
        return "\n".join(self.events)

    def step(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the stand-in started (processes, files); called once by stop()."""

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
                self._last_error = ""
            except Exception as exc:  # an apiserver hiccup must not end the loop
                text = f"step failed: {type(exc).__name__}: {str(exc)[:500]}"
                if text != self._last_error:  # the same error each poll is noted once
                    self.note(text)
                self._last_error = text
            self._stop.wait(self.poll_s)

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
