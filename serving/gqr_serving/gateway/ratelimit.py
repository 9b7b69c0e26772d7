"""Abuse limits: token buckets per user (or session) and per client address, in memory.

Each replica keeps its own buckets, so the effective limit of a deployment is the per-replica
limit times the replicas a client's requests spread over. A bucket holds at most ``burst``
tokens and gains ``rate`` a second; a request takes one from every bucket it is checked
against, or none when any is empty (then it is answered 429 with ``Retry-After``). Memory is
bounded: a bucket idle long enough to be full again is the same as no bucket and is dropped,
and past ``max_keys`` the least recently used bucket goes (its key starts over full).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Clock = Callable[[], float]
MAX_ADDRESS_CHARS = 64


class TokenBuckets:
    """One token bucket per key: ``rate`` tokens a second, at most ``burst``; 0 = no limit."""

    def __init__(self, rate: float, burst: int, *, max_keys: int = 100_000) -> None:
        if rate < 0 or burst < 0 or max_keys < 1:
            raise ValueError(
                f"rate={rate}, burst={burst}, max_keys={max_keys} "
                "(accepted: rate >= 0, burst >= 0, max_keys >= 1)"
            )
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.burst > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` has a token (0: it has one now). Takes nothing."""
        if not self.enabled:
            return 0.0
        tokens = self._tokens(key, now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, key: str, now: float) -> None:
        """Takes one token from ``key`` (call after :meth:`wait` said 0)."""
        if not self.enabled:
            return
        self._buckets[key] = (self._tokens(key, now) - 1.0, now)
        self._buckets.move_to_end(key)
        self._evict(now)

    def _tokens(self, key: str, now: float) -> float:
        got = self._buckets.get(key)
        if got is None:
            return float(self.burst)
        tokens, at = got
        return min(float(self.burst), tokens + max(0.0, now - at) * self.rate)

    def _evict(self, now: float) -> None:
        # Least recently used first: drop those full again (as good as absent), then any
        # over max_keys.
        while self._buckets:
            key, (tokens, at) = next(iter(self._buckets.items()))
            full_again = at + (self.burst - tokens) / self.rate <= now
            if not full_again and len(self._buckets) <= self.max_keys:
                break
            del self._buckets[key]


@dataclass(frozen=True)
class Limited:
    """Why a request was refused: which bucket, its setting, and when to come back."""

    key: str
    """``user`` or ``addr``."""
    setting: str
    """The flag whose rate refused it."""
    rate: float
    burst: int
    retry_after_s: int
    """Whole seconds, at least 1."""

    def detail(self, endpoint: str) -> str:
        who = "user or session" if self.key == "user" else "client address"
        return (
            f"rate limit: at most {self.rate:g} requests/s (burst {self.burst}) per {who} on "
            f"{endpoint} (--{self.setting.replace('_', '-')}, per gateway replica); "
            f"retry in {self.retry_after_s}s"
        )


class AbuseLimits:
    """The buckets of one replica: per endpoint, one keyed by user and one by address."""

    def __init__(self, settings: Any, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._tables: dict[tuple[str, str], tuple[str, TokenBuckets]] = {}
        for endpoint in ("recommend", "feedback"):
            for key in ("user", "addr"):
                name = f"rate_{endpoint}_{key}"
                rate, burst = getattr(settings, name + "_per_s"), getattr(settings, name + "_burst")
                buckets = TokenBuckets(rate, burst, max_keys=settings.rate_max_keys)
                self._tables[(endpoint, key)] = (name + "_per_s", buckets)

    def check(self, endpoint: str, user: str | None, addr: str) -> Limited | None:
        """Takes a token from each bucket of ``endpoint`` (the user's only with a user), or
        none and says which bucket is empty."""
        now = self.clock()
        wanted = [("user", user), ("addr", addr)]
        checks = [(k, self._tables[(endpoint, k)], v) for k, v in wanted if v is not None]
        for key, (setting, buckets), value in checks:
            wait = buckets.wait(value, now)
            if wait > 0:
                retry = max(1, math.ceil(wait))
                return Limited(key, setting, buckets.rate, buckets.burst, retry)
        for _, (_, buckets), value in checks:
            buckets.take(value, now)
        return None

    def sizes(self) -> dict[tuple[str, str], int]:
        """Buckets held per (endpoint, key)."""
        return {k: len(b) for k, (_, b) in self._tables.items()}


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (``10.0.0.0/8``, ``::1/128``) -> networks; ValueError names the bad one."""
    out = []
    for text in values:
        try:
            out.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{text!r} is not an address or CIDR (accepted: e.g. 10.0.0.0/8, fd00::/8)"
            ) from None
    return tuple(out)


def _trusted(host: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """The address a request is limited by: the connecting peer, or, when the peer is a
    trusted proxy, the nearest ``X-Forwarded-For`` hop that is not one (read from the right:
    hops further left were written by the client and can be forged)."""
    host = (peer or "unknown")[:MAX_ADDRESS_CHARS]
    if not proxies or not forwarded_for or not _trusted(host, proxies):
        return host
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop[:MAX_ADDRESS_CHARS]
    return hops[0][:MAX_ADDRESS_CHARS] if hops else host


def feedback_user(body: Any, ref: Any) -> str | None:
    """The user (or session) a feedback request is limited as: the key its impression id is
    bound to (checked by the id's tag before this is asked). None for an impression served to
    nobody in particular: the request is limited by its address only."""
    if not getattr(ref, "bound", False):
        return None
    value = getattr(body, "user_key", None) or getattr(body, "session_id", None)
    return value if isinstance(value, str) and value else None
