"""``OutputGuard``: the output filter in force (``--pii-filters``, ``--blocklist-file``).

The blocklist file is read at start (a missing or invalid one stops the gateway) and then
watched like the routing file: a change is loaded; a file that turns invalid keeps the
previous filter in force and is counted as a failed reload.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gqr_serving.gateway.routing_file import WatchedFile
from gqr_serving.safety import OutputFilter, load_blocklist, parse_pii

log = logging.getLogger("gqr_serving.gateway")


class OutputGuard(WatchedFile):
    """Holds the current :class:`OutputFilter`; :meth:`watch` reloads the blocklist file."""

    what = "blocklist"

    def __init__(self, pii: str, path: Path | None = None, poll_s: float = 1.0) -> None:
        super().__init__(path, poll_s)
        self.pii = parse_pii(pii)
        blocklist = load_blocklist(path) if path is not None else None
        self.filter: OutputFilter | None = OutputFilter(self.pii, blocklist)
        if not self.filter.active:
            self.filter = None  # "none" and no blocklist: nothing to check

    def reload(self) -> None:
        """Re-read the blocklist file; on error keep the current filter and raise SafetyError."""
        if self.path is None:
            return
        blocklist = self._load(load_blocklist)
        self.filter = OutputFilter(self.pii, blocklist)
        log.info(
            "blocklist reloaded from %s: %d terms, %d regexes",
            self.path,
            len(blocklist.terms),
            len(blocklist.regexes),
        )
