"""``OutputGuard``: the output filter in force (``--pii-filters``, ``--blocklist-file``).

The blocklist file is read at start (a missing or invalid one stops the gateway) and then
watched like the routing file: a change is loaded; a file that turns invalid keeps the
previous filter in force and is counted as a failed reload.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from gqr_serving.gateway.routing_file import file_identity
from gqr_serving.safety import OutputFilter, load_blocklist, parse_pii

log = logging.getLogger("gqr_serving.gateway")


class OutputGuard:
    """Holds the current :class:`OutputFilter`; :meth:`watch` reloads the blocklist file."""

    def __init__(self, pii: str, path: Path | None = None, poll_s: float = 1.0) -> None:
        self.pii = parse_pii(pii)
        self.path, self.poll_s = path, poll_s
        self.last_error: str | None = None
        self._signature = self._stat()
        blocklist = load_blocklist(path) if path is not None else None
        self.filter: OutputFilter | None = OutputFilter(self.pii, blocklist)
        if not self.filter.active:
            self.filter = None  # "none" and no blocklist: nothing to check

    def _stat(self) -> tuple[int, int, int, int] | None:
        return file_identity(self.path)

    def changed(self) -> bool:
        return self.path is not None and self._stat() != self._signature

    def reload(self) -> None:
        """Re-read the blocklist file; on error keep the current filter and raise SafetyError."""
        if self.path is None:
            return
        self._signature = self._stat()
        try:
            blocklist = load_blocklist(self.path)
        except ValueError as exc:
            self.last_error = str(exc)
            raise
        self.last_error = None
        self.filter = OutputFilter(self.pii, blocklist)
        log.info(
            "blocklist reloaded from %s: %d terms, %d regexes",
            self.path,
            len(blocklist.terms),
            len(blocklist.regexes),
        )

    async def watch(self, on_result: Callable[[str], None] | None = None) -> None:
        """Poll the file forever; reload on change; ``on_result("ok" | "error")``."""
        while True:
            await asyncio.sleep(self.poll_s)
            if not self.changed():
                continue
            try:
                self.reload()
            except ValueError as exc:
                log.error("blocklist reload failed; keeping the previous one: %s", exc)
                result = "error"
            else:
                result = "ok"
            if on_result is not None:
                on_result(result)
