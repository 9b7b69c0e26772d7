"""Impression ids a click farm cannot reuse: tamper-proof, bound to the user or session they
were served to, expiring, and signed by a key that rotates with an overlap, without a restart."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from gateway_fakes import ScriptedBackend, client

from gqr_serving.gateway.ids import Keys, Refused, peek_impression_id

pytestmark = pytest.mark.anyio
GOOD = "green tea for weight loss <SEP> green tea side effects <SEP> best green tea brands"
T0 = 1_700_000_000_000


def refused(keys: Keys, iid: str, presented: str | None = None, now_ms: int = T0) -> str:
    with pytest.raises(Refused) as exc:
        keys.open_impression_id(iid, presented, now_ms=now_ms)
    return exc.value.code


def test_ids_fit_the_record_and_resist_tampering() -> None:
    keys = Keys(b"x" * 32)
    iid = keys.new_impression_id(T0, 6, "canary-b-long-na", "v" + "9" * 39, bound_to="u" * 256)
    assert len(iid) <= 128  # the record's and the feedback body's limit
    ref = keys.open_impression_id(iid, "u" * 256, now_ms=T0)
    assert (ref.n, ref.arm, ref.bound) == (6, "canary-b-long-na", True)
    assert peek_impression_id(iid) == ref
    assert refused(Keys(b"y" * 32), iid, "u" * 256) == "wrong_user"
    assert refused(keys, iid.replace(".", "x")) == "unknown_impression"
    assert refused(keys, "not an id") == "unknown_impression"
    unbound = keys.new_impression_id(T0, 3, "stable", "v1")
    assert refused(Keys(b"y" * 32), unbound) == "unknown_impression"
    assert keys.open_impression_id(unbound, now_ms=T0).bound is False


def test_a_bound_id_counts_only_with_the_key_it_was_served_to() -> None:
    keys = Keys(b"x" * 32)
    iid = keys.new_impression_id(T0, 3, "stable", "v1", bound_to="alice")
    assert keys.open_impression_id(iid, "alice", now_ms=T0).n == 3
    assert refused(keys, iid, "mallory") == "wrong_user"
    assert refused(keys, iid, None) == "user_required"
    # Clearing the flag to dodge the binding breaks the tag.
    head, tag = iid.split(".")
    raw = bytearray(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    raw[16] = 0  # the flags byte: after the version byte and the 15-byte head
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode() + "." + tag
    peeked = peek_impression_id(forged)
    assert peeked is not None and not peeked.bound
    assert refused(keys, forged) == "unknown_impression"


def test_ids_expire_after_the_ttl() -> None:
    keys = Keys(b"x" * 32, ttl_s=3600)
    iid = keys.new_impression_id(T0, 3, "stable", "v1", bound_to="alice")
    assert keys.open_impression_id(iid, "alice", now_ms=T0 + 3_599_000).n == 3
    assert refused(keys, iid, "alice", now_ms=T0 + 3_601_000) == "impression_expired"


def test_rotation_opens_ids_of_the_previous_and_next_key_but_signs_with_one() -> None:
    old, new = b"o" * 32, b"n" * 32
    before = Keys(old).new_impression_id(T0, 3, "stable", "v1", bound_to="alice")
    during = Keys(new, [old])  # the new key signs; the previous one still opens
    assert during.open_impression_id(before, "alice", now_ms=T0).n == 3
    made = during.new_impression_id(T0, 3, "stable", "v1", bound_to="alice")
    assert Keys(old, [new]).open_impression_id(made, "alice", now_ms=T0).n == 3  # "next"
    assert refused(Keys(old), made, "alice") == "wrong_user"  # the new key is needed
    assert refused(Keys(new), before, "alice") == "wrong_user"  # previous dropped: refused


def _fb(iid: str, **kw: object) -> dict[str, object]:
    return {"impression_id": iid, "positions": [0], **kw}


async def test_feedback_answers_say_why_a_click_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k" * 32)
    req = {"task": "suggestion", "query": "what is green tea", "user_key": "alice"}
    async with client(tmp_path, ScriptedBackend(GOOD), secret_key_file=key) as c:
        iid = (await c.post("/v1/recommend", json=req)).json()["impression_id"]
        by_session = {**req, "user_key": None, "session_id": "s-1"}
        sid = (await c.post("/v1/recommend", json=by_session)).json()["impression_id"]
        anon = {k: v for k, v in req.items() if k != "user_key"}
        aid = (await c.post("/v1/recommend", json=anon)).json()["impression_id"]
        other = await c.post("/v1/feedback", json=_fb(iid, user_key="mallory"))
        missing = await c.post("/v1/feedback", json=_fb(iid))
        ok = await c.post("/v1/feedback", json=_fb(iid, user_key="alice"))
        ok_session = await c.post("/v1/feedback", json=_fb(sid, session_id="s-1"))
        ok_anon = await c.post("/v1/feedback", json=_fb(aid))
        metrics = (await c.get("/metrics")).text
        gw = c.app.state.gateway  # type: ignore[attr-defined]
        gw.keys.ttl_s = 0.0  # every impression is now past its lifetime
        time.sleep(0.01)
        late = await c.post("/v1/feedback", json=_fb(iid, user_key="alice", positions=[1]))
    assert (other.status_code, other.json()["error"]) == (403, "wrong_user")
    assert (missing.status_code, missing.json()["error"]) == (403, "user_required")
    assert "user_key" in missing.json()["detail"]
    assert [ok.status_code, ok_session.status_code, ok_anon.status_code] == [200, 200, 200]
    assert (late.status_code, late.json()["error"]) == (410, "impression_expired")
    assert "--impression-ttl-s" in late.json()["detail"]
    assert 'gqr_gateway_clicks_refused_total{reason="wrong_user"} 1.0' in metrics


async def test_a_rotated_key_file_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    key, previous, nxt = tmp_path / "key", tmp_path / "previous", tmp_path / "next"
    key.write_text("A" * 32)
    req = {"task": "suggestion", "query": "what is green tea", "user_key": "alice"}
    async with client(
        tmp_path, ScriptedBackend(GOOD), secret_key_file=key, verify_key_files=(previous, nxt)
    ) as c:
        gw = c.app.state.gateway  # type: ignore[attr-defined]
        old_id = (await c.post("/v1/recommend", json=req)).json()["impression_id"]
        assert gw.reload_keys() is False  # nothing changed
        # Step 1: the next key is published (verify only) so every replica opens its ids.
        nxt.write_text("B" * 32)
        assert gw.reload_keys() is True and gw.keys.verify_count == 1
        # Step 2: it signs; the old key stays as previous until its ids have expired.
        key.write_text("B" * 32)
        previous.write_text("A" * 32)
        nxt.unlink()
        assert gw.reload_keys() is True
        new_id = (await c.post("/v1/recommend", json=req)).json()["impression_id"]
        both = [
            (await c.post("/v1/feedback", json=_fb(i, user_key="alice"))).status_code
            for i in (old_id, new_id)
        ]
        # Step 3: previous is removed; ids it signed are refused from then on.
        previous.unlink()
        assert gw.reload_keys() is True
        gone = await c.post("/v1/feedback", json=_fb(old_id, user_key="alice", positions=[1]))
        # A broken key file keeps the keys in force.
        key.write_text("short")
        assert gw.reload_keys() is False
        still = await c.post("/v1/feedback", json=_fb(new_id, user_key="alice", positions=[1]))
        metrics = (await c.get("/metrics")).text
    assert both == [200, 200]
    assert gone.status_code == 403
    assert still.status_code == 200
    assert 'gqr_gateway_key_reloads_total{result="error"} 1.0' in metrics
