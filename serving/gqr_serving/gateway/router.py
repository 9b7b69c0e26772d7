"""Sticky, weighted user -> arm assignment and the hot-reloaded routing table.

Assignment is weighted rendezvous hashing: each arm scores ``-ln(u) / weight`` with ``u`` a
hash of (salt, arm, user key) in (0, 1), and the lowest score wins. A user keeps their arm
as long as the weights do; when weights change, a user only moves to an arm whose weight
grew, from an arm whose weight shrank — the smallest movement possible, for any number of
arms (with two arms, 90/10 -> 80/20 moves exactly the ~10% of users who go to the canary).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gqr_contracts.routing import ArmConfig, Decoding, RoutingConfig
from gqr_serving.backends import GuardedBackend, make_backend
from gqr_serving.gateway.routing_file import WatchedFile, load_routing

log = logging.getLogger("gqr_serving.gateway")
BackendFactory = Callable[[ArmConfig], GuardedBackend]


def _unit(salt: str, arm: str, key: str) -> float:
    digest = hashlib.blake2b(f"{salt}\x00{arm}\x00{key}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2.0**64


def assign(arms: tuple[ArmConfig, ...], key: str, salt: str = "") -> ArmConfig:
    """The arm ``key`` belongs to (weighted rendezvous hashing; arms of weight 0 never win)."""
    best, best_score = None, math.inf
    for arm in arms:
        if arm.weight <= 0:
            continue
        score = -math.log(_unit(salt, arm.name, key)) / arm.weight
        if score < best_score:
            best, best_score = arm, score
    if best is None:
        raise ValueError("no arm has a weight > 0")
    return best


@dataclass(frozen=True)
class Arm:
    """A routable arm: its config, resolved decoding and live backend."""

    config: ArmConfig
    decoding: Decoding
    backend: GuardedBackend

    @property
    def name(self) -> str:
        return self.config.name


class Router(WatchedFile):
    """Holds the current routing table and its backends; reloads it when the file changes."""

    what = "routing"

    def __init__(
        self,
        config: RoutingConfig,
        *,
        path: Path | None = None,
        factory: BackendFactory | None = None,
        poll_s: float = 1.0,
    ) -> None:
        super().__init__(path, poll_s)
        self.factory: BackendFactory = factory or (lambda arm: make_backend(arm.backend))
        self.config = config
        self.arms: dict[str, Arm] = {}
        self.reloads = 0
        self._install(config)

    @classmethod
    def from_file(cls, path: Path, **kwargs: object) -> Router:
        return cls(load_routing(path), path=path, **kwargs)  # type: ignore[arg-type]

    def route(self, key: str | None) -> Arm:
        """The arm for a user/session key; a random one (by weight) without a key."""
        cfg = self.config
        chosen = assign(cfg.arms, key if key is not None else secrets.token_hex(8), cfg.salt)
        return self.arms[chosen.name]

    def _install(self, config: RoutingConfig) -> list[GuardedBackend]:
        """Swap in ``config``; reuse backends whose spec is unchanged; return retired ones."""
        old = self.arms
        arms: dict[str, Arm] = {}
        for ac in config.arms:
            prev = old.get(ac.name)
            same = prev is not None and prev.config.backend == ac.backend
            backend = prev.backend if same and prev is not None else self.factory(ac)
            arms[ac.name] = Arm(ac, config.decoding_of(ac), backend)
        kept = {id(a.backend) for a in arms.values()}
        self.config, self.arms = config, arms  # readers see the old or the new table
        self.reloads += 1
        return [a.backend for a in old.values() if id(a.backend) not in kept]

    def reload(self) -> list[GuardedBackend]:
        """Re-read the file now; on error keep the current table and raise RoutingError.

        Backends the new table no longer uses are closed after a grace (requests in flight on
        the old table finish first) when an event loop runs; returned either way.
        """
        if self.path is None:
            return []
        config = self._load(load_routing)
        retired = self._install(config)
        log.info(
            "routing reloaded from %s: %s",
            self.path,
            ", ".join(f"{a.name}={a.weight:g}@{a.model_version}" for a in config.arms),
        )
        if retired:
            # Without a running loop (a synchronous caller) the caller closes them.
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(_close_later(retired, 30.0))
        return retired

    async def aclose(self) -> None:
        for arm in self.arms.values():
            await arm.backend.aclose()


async def _close_later(backends: list[GuardedBackend], delay: float) -> None:
    await asyncio.sleep(delay)  # requests in flight on the old table finish first
    for b in backends:
        try:
            await b.aclose()
        except Exception as exc:  # closing is best effort
            log.warning("closing retired backend %s failed: %s", b.name, exc)
