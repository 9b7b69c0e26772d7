"""Keyed hashing of user keys and self-describing, tamper-proof impression ids.

An impression id carries when it was shown, how many queries, the arm and the model version,
plus an HMAC tag. Any replica can therefore accept a click without a lookup (a forged or
mangled id fails the tag), and ``/v1/stats`` attributes a click to its arm straight from the
id. Raw user keys never leave this module: records and logs hold ``hash_user(key)`` only.

An id served to a request with a user or session key is *bound* to it: the tag covers the
key's hash, so a click counts only when it comes back with the same key. Ids *expire*: a click
on an impression shown longer ago than the TTL is refused. Keys *rotate* with an overlap: one
key signs, any of the verify-only keys (the previous one, and the next one while replicas pick
it up) still opens ids.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("gqr_serving.gateway")

_HEAD = struct.Struct(">QB6s")  # ts in ms, number of queries, random (legacy ids: no version)
_VERSION = 2
_BOUND = 1  # flag bit: the tag covers the hash of the user/session key it was served to
_TAG_BYTES = 9
SECRET_FILE = ".gateway-secret"
MIN_SECRET_BYTES = 16


@dataclass(frozen=True)
class ImpressionRef:
    """What an impression id says about its impression."""

    ts_ms: int
    n: int
    arm: str
    model_version: str
    bound: bool = False


class Refused(Exception):
    """A click's impression id is not accepted: ``code`` (unknown_impression, wrong_user,
    user_required, impression_expired) and a message for the client."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


class _Secret:
    """The two keys derived from one secret: user-key hashing and impression-id tags."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the gateway secret must be at least {MIN_SECRET_BYTES} bytes")
        self.raw = secret
        self.user = hmac.new(secret, b"gqr-user-key", hashlib.sha256).digest()
        self.ids = hmac.new(secret, b"gqr-impression-id", hashlib.sha256).digest()

    def hash_user(self, raw: str) -> str:
        return hmac.new(self.user, raw.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:32]

    def tag(self, payload: bytes, bound_to: str | None) -> bytes:
        msg = payload if bound_to is None else payload + b"\0" + self.hash_user(bound_to).encode()
        return hmac.new(self.ids, msg, hashlib.sha256).digest()[:_TAG_BYTES]


class Keys:
    """The signing secret and the verify-only ones (key rotation), with the ids' lifetime."""

    def __init__(
        self, secret: bytes, verify: Sequence[bytes] = (), *, ttl_s: float = 86400.0
    ) -> None:
        self._sign = _Secret(secret)
        others = [_Secret(v) for v in dict.fromkeys(verify) if v != secret]
        self._open = [self._sign, *others]
        self.ttl_s = ttl_s

    @property
    def verify_count(self) -> int:
        """How many verify-only keys (besides the signing key) open ids."""
        return len(self._open) - 1

    def hash_user(self, raw: str) -> str:
        """Keyed hash of a user/session key (hex, 32 chars); not reversible without the key.
        Under the signing key: a rotation starts new pseudonyms."""
        return self._sign.hash_user(raw)

    def new_impression_id(
        self, ts_ms: int, n: int, arm: str, model_version: str, bound_to: str | None = None
    ) -> str:
        """An id for an impression shown at ``ts_ms``; bound to ``bound_to`` (the request's
        user or session key) when given."""
        flags = _BOUND if bound_to is not None else 0
        payload = (
            bytes([_VERSION])
            + _HEAD.pack(ts_ms, n, secrets.token_bytes(6))
            + bytes([flags])
            + _text(arm)
            + _text(model_version)
        )
        return _b64(payload) + "." + _b64(self._sign.tag(payload, bound_to))

    def open_impression_id(
        self, iid: str, presented: str | None = None, *, now_ms: int | None = None
    ) -> ImpressionRef:
        """The id's contents if one of the keys made it for ``presented`` (the key the click
        came with) and it has not expired; else :class:`Refused` saying why."""
        parts = iid.split(".")
        payload = _unb64(parts[0]) if len(parts) == 2 else None
        tag = _unb64(parts[1]) if len(parts) == 2 else None
        ref = _decode(payload) if payload is not None else None
        if ref is None or payload is None or tag is None:
            raise Refused("unknown_impression", "impression_id was not issued here")
        if ref.bound and presented is None:
            raise Refused(
                "user_required",
                "impression_id was served to a user: send the user_key (or session_id) of "
                "the recommend request with its clicks",
            )
        bound_to = presented if ref.bound else None
        if not any(hmac.compare_digest(k.tag(payload, bound_to), tag) for k in self._open):
            if ref.bound:
                raise Refused(
                    "wrong_user",
                    "impression_id was not issued here for this user_key/session_id",
                )
            raise Refused("unknown_impression", "impression_id was not issued here")
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        age_s = (now_ms - ref.ts_ms) / 1000
        if age_s > self.ttl_s:
            raise Refused(
                "impression_expired",
                f"impression shown {age_s:.0f}s ago; clicks are accepted for "
                f"{self.ttl_s:.0f}s (--impression-ttl-s)",
            )
        return ref


def peek_impression_id(iid: str) -> ImpressionRef | None:
    """The id's contents without checking the tag (stats over records already accepted)."""
    payload = _unb64(iid.split(".", 1)[0])
    return None if payload is None else _decode(payload)


@dataclass(frozen=True)
class KeyFiles:
    """Where the keys live: the signing key file and verify-only files (absent ones skipped).

    Re-read by :meth:`load`; a mounted Kubernetes Secret that is edited shows up there, so
    a rotation needs no restart."""

    sign: Path
    verify: tuple[Path, ...] = ()

    def load(self) -> tuple[bytes, list[bytes]]:
        secret = _read_key(self.sign)
        verify = []
        for path in self.verify:
            try:
                verify.append(_read_key(path))
            except FileNotFoundError:
                continue
        return secret, verify


def _read_key(path: Path) -> bytes:
    data = path.read_bytes().strip()
    if len(data) < MIN_SECRET_BYTES:
        raise ValueError(f"{path}: the secret must be at least {MIN_SECRET_BYTES} bytes")
    return data


def load_secret(secret_file: Path | None, log_root: str) -> bytes:
    """The shared secret: ``secret_file``, else ``<log_root>/.gateway-secret`` (made once,
    atomically, so replicas sharing the root agree), else a per-process random key."""
    if secret_file is not None:
        return _read_key(secret_file)
    if "://" in log_root:
        log.warning(
            "no --secret-key-file and the log root is a URL: using a per-process key; "
            "clicks sent to another replica will be refused as unknown impressions"
        )
        return secrets.token_bytes(32)
    path = Path(log_root) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        tmp = secrets.token_hex(32).encode()
        with os.fdopen(fd, "wb") as f:
            f.write(tmp)
            f.flush()
            os.fsync(f.fileno())
        return tmp
    for _ in range(100):  # another replica may be writing it right now
        data = path.read_bytes().strip()
        if len(data) >= MIN_SECRET_BYTES:
            return data
        time.sleep(0.01)
    raise ValueError(f"{path} holds no usable secret; delete it or pass --secret-key-file")


def _text(s: str) -> bytes:
    raw = s.encode()
    return bytes([len(raw)]) + raw


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes | None:
    if not text or len(text) > 200 or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None


def _decode(payload: bytes) -> ImpressionRef | None:
    """Both layouts: version 2 (a version byte, then the head, flags, arm, version) and the
    legacy one (no version byte, no flags; its first byte, the top of a ms timestamp, is 0)."""
    bound = False
    try:
        if payload[0] == _VERSION:
            ts_ms, n, _ = _HEAD.unpack_from(payload, 1)
            bound = bool(payload[1 + _HEAD.size] & _BOUND)
            rest = payload[2 + _HEAD.size :]
        elif payload[0] == 0:
            ts_ms, n, _ = _HEAD.unpack_from(payload)
            rest = payload[_HEAD.size :]
        else:
            return None
        a = rest[0]
        arm = rest[1 : 1 + a].decode()
        m = rest[1 + a]
        version = rest[2 + a : 2 + a + m].decode()
        if len(rest) != 2 + a + m:
            return None
    except (struct.error, IndexError, UnicodeDecodeError):
        return None
    return ImpressionRef(ts_ms, n, arm, version, bound)
