"""Keyed hashing of user keys and self-describing, tamper-proof impression ids.

An impression id carries when it was shown, how many queries, the arm and the model version,
plus an HMAC tag. Any replica can therefore accept a click without a lookup (a forged or
mangled id fails the tag), and ``/v1/stats`` attributes a click to its arm straight from the
id. Raw user keys never leave this module: records and logs hold ``hash_user(key)`` only.
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
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("gqr_serving.gateway")

_HEAD = struct.Struct(">QB6s")  # ts in ms, number of queries, random
_TAG_BYTES = 9
SECRET_FILE = ".gateway-secret"


@dataclass(frozen=True)
class ImpressionRef:
    """What an impression id says about its impression."""

    ts_ms: int
    n: int
    arm: str
    model_version: str


class Keys:
    """Two keys derived from one secret: user-key hashing and impression-id tags."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the gateway secret must be at least 16 bytes")
        self._user = hmac.new(secret, b"gqr-user-key", hashlib.sha256).digest()
        self._ids = hmac.new(secret, b"gqr-impression-id", hashlib.sha256).digest()

    def hash_user(self, raw: str) -> str:
        """Keyed hash of a user/session key (hex, 32 chars); not reversible without the key."""
        return hmac.new(self._user, raw.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:32]

    def new_impression_id(self, ts_ms: int, n: int, arm: str, model_version: str) -> str:
        payload = _HEAD.pack(ts_ms, n, secrets.token_bytes(6)) + _text(arm) + _text(model_version)
        tag = hmac.new(self._ids, payload, hashlib.sha256).digest()[:_TAG_BYTES]
        return _b64(payload) + "." + _b64(tag)

    def open_impression_id(self, iid: str) -> ImpressionRef | None:
        """The id's contents if its tag is right (made by a replica sharing this secret)."""
        parts = iid.split(".")
        if len(parts) != 2:
            return None
        payload, tag = _unb64(parts[0]), _unb64(parts[1])
        if payload is None or tag is None:
            return None
        want = hmac.new(self._ids, payload, hashlib.sha256).digest()[:_TAG_BYTES]
        if not hmac.compare_digest(want, tag):
            return None
        return _decode(payload)


def peek_impression_id(iid: str) -> ImpressionRef | None:
    """The id's contents without checking the tag (stats over records already accepted)."""
    payload = _unb64(iid.split(".", 1)[0])
    return None if payload is None else _decode(payload)


def load_secret(secret_file: Path | None, log_root: str) -> bytes:
    """The shared secret: ``secret_file``, else ``<log_root>/.gateway-secret`` (made once,
    atomically, so replicas sharing the root agree), else a per-process random key."""
    if secret_file is not None:
        data = secret_file.read_bytes().strip()
        if len(data) < 16:
            raise ValueError(f"{secret_file}: the secret must be at least 16 bytes")
        return data
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
        if len(data) >= 16:
            return data
        import time

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
    try:
        ts_ms, n, _ = _HEAD.unpack_from(payload)
        rest = payload[_HEAD.size :]
        a = rest[0]
        arm = rest[1 : 1 + a].decode()
        m = rest[1 + a]
        version = rest[2 + a : 2 + a + m].decode()
        if len(rest) != 2 + a + m:
            return None
    except (struct.error, IndexError, UnicodeDecodeError):
        return None
    return ImpressionRef(ts_ms, n, arm, version)
