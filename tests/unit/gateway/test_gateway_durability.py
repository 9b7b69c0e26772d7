"""Acknowledged impressions (--impression-durability ack): the answer comes once its impression
is durable, through a group commit shared by concurrent requests; a late or failing store
degrades to the fsync'd spool; a spool replayed twice counts each impression once."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from gateway_fakes import ScriptedBackend, client
from testsupport.records import impression

from gqr_serving.gateway.service import GatewayParts
from gqr_serving.gateway.sink import GroupCommit
from gqr_serving.gateway.spool import Spool
from gqr_serving.logstore import LogReader, LogWriter
from gqr_serving.records import ImpressionRecord

pytestmark = pytest.mark.anyio
GOOD = "green tea for weight loss <SEP> green tea side effects <SEP> best green tea brands"
REQ = {"task": "suggestion", "query": "what is green tea", "ai_answer": "A drink."}


class Broken:
    def write_many(self, records: object) -> None:
        raise OSError(28, "No space left on device")

    def close(self) -> None:
        return None


class Gated:
    """A real writer whose writes wait for ``gate`` (a store that hangs)."""

    def __init__(self, root: Path, gate: threading.Event, entered: threading.Event) -> None:
        self.inner = LogWriter(root, writer_id=f"gated-{time.time_ns()}")
        self.gate, self.entered = gate, entered

    def write_many(self, records: Sequence[Any]) -> None:
        self.entered.set()
        self.gate.wait(10)
        self.inner.write_many(records)

    def close(self) -> None:
        self.inner.close()


def _writers(tmp_path: Path, **by_role: Any) -> Any:
    """A writer factory: the given object per role, else a real LogWriter on tmp/logs."""

    def make(role: str) -> Any:
        if role in by_role:
            return by_role[role]()
        return LogWriter(tmp_path / "logs", writer_id=f"w-{role}-{time.time_ns()}")

    return make


def _stored(tmp_path: Path) -> list[str]:
    return [r.impression_id for r in LogReader(tmp_path / "logs").read("impression")]


def _metric(text: str, line: str) -> float:
    for ln in text.splitlines():
        if ln.startswith(line + " "):
            return float(ln.rsplit(" ", 1)[1])
    return 0.0


async def test_ack_answers_only_once_the_impression_is_in_the_store(tmp_path: Path) -> None:
    async with client(tmp_path, ScriptedBackend(GOOD), impression_durability="ack") as c:
        ids = []
        for i in range(3):
            r = await c.post("/v1/recommend", json={**REQ, "user_key": f"u{i}"})
            assert r.status_code == 200
            ids.append(r.json()["impression_id"])
            assert ids[-1] in _stored(tmp_path)  # read back at once: no flush, no wait
        metrics = (await c.get("/metrics")).text
    assert _metric(metrics, 'gqr_gateway_impression_acks_total{result="store"}') == 3
    assert sorted(_stored(tmp_path)) == sorted(ids)


async def test_concurrent_requests_share_one_commit(tmp_path: Path) -> None:
    calls: list[int] = []
    gate, entered = threading.Event(), threading.Event()

    class Counting(Gated):
        def write_many(self, records: Sequence[Any]) -> None:
            calls.append(len(records))
            super().write_many(records)

    commit = GroupCommit(lambda role: Counting(tmp_path / "logs", gate, entered), "imp-ack",
                         timeout_s=10)  # fmt: skip
    commit.start()
    try:
        recs = [_record(f"iid-{i}") for i in range(20)]
        first = asyncio.create_task(commit.write(recs[:1]))
        await asyncio.to_thread(entered.wait, 5)  # the first commit is under way: 19 queue up
        rest = [asyncio.create_task(commit.write([r])) for r in recs[1:]]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(first, *rest)
    finally:
        commit.close()
    assert calls == [1, 19]
    assert sorted(_stored(tmp_path)) == sorted(r.impression_id for r in recs)


async def test_a_hung_store_degrades_to_the_spool_and_counts_once(tmp_path: Path) -> None:
    gate, entered = threading.Event(), threading.Event()
    writers = _writers(tmp_path, **{"imp-ack": lambda: Gated(tmp_path / "logs", gate, entered)})
    parts = GatewayParts(writer_factory=writers)
    async with client(
        tmp_path,
        ScriptedBackend(GOOD),
        parts=parts,
        impression_durability="ack",
        impression_ack_timeout_s=0.2,
    ) as c:
        t0 = time.monotonic()
        r = await c.post("/v1/recommend", json={**REQ, "user_key": "u1"})
        assert r.status_code == 200 and time.monotonic() - t0 < 2  # served, not stuck
        iid = r.json()["impression_id"]
        spooled = b"".join(p.read_bytes() for p in (tmp_path / "spool").glob("spool-*.jsonl*"))
        gw = c.app.state.gateway  # type: ignore[attr-defined]
        assert iid.encode() in spooled or iid in _stored(tmp_path)  # durable either way
        gate.set()  # the store comes back: the late commit and the replay both land
        assert gw.sink.flush(10)
        metrics = (await c.get("/metrics")).text
        stats = (await c.get("/v1/stats", params={"fresh": "true"})).json()
    assert _metric(metrics, 'gqr_gateway_impression_ack_fallbacks_total{reason="timeout"}') == 1
    assert _metric(metrics, 'gqr_gateway_impression_acks_total{result="spool"}') == 1
    assert set(_stored(tmp_path)) == {iid}
    assert stats["arms"][0]["impressions"] == 1  # twice in the store, counted once


async def test_a_failing_store_spools_and_replays(tmp_path: Path) -> None:
    parts = GatewayParts(writer_factory=_writers(tmp_path, **{"imp-ack": Broken}))
    async with client(
        tmp_path, ScriptedBackend(GOOD), parts=parts, impression_durability="ack"
    ) as c:
        ids = [
            (await c.post("/v1/recommend", json={**REQ, "user_key": f"u{i}"})).json()[
                "impression_id"
            ]
            for i in range(4)
        ]
        assert c.app.state.gateway.sink.flush(10)  # type: ignore[attr-defined]
        metrics = (await c.get("/metrics")).text
    assert _metric(metrics, 'gqr_gateway_impression_ack_fallbacks_total{reason="error"}') == 4
    assert sorted(_stored(tmp_path)) == sorted(ids)
    assert not list((tmp_path / "spool").glob("spool-*.jsonl*"))  # replayed, then removed


async def test_store_and_spool_both_refusing_is_a_503(tmp_path: Path) -> None:
    parts = GatewayParts(writer_factory=_writers(tmp_path, **{"imp-ack": Broken}))
    async with client(
        tmp_path,
        ScriptedBackend(GOOD),
        parts=parts,
        impression_durability="ack",
        spool_max_bytes=0,
    ) as c:
        r = await c.post("/v1/recommend", json={**REQ, "user_key": "u1"})
        metrics = (await c.get("/metrics")).text
    assert r.status_code == 503 and r.json()["error"] == "log_store_unavailable"
    assert _metric(metrics, 'gqr_gateway_impression_acks_total{result="failed"}') == 1


async def test_async_mode_is_unchanged_and_answers_before_the_store(tmp_path: Path) -> None:
    gate, entered = threading.Event(), threading.Event()
    parts = GatewayParts(
        writer_factory=_writers(tmp_path, imp=lambda: Gated(tmp_path / "logs", gate, entered))
    )
    async with client(tmp_path, ScriptedBackend(GOOD), parts=parts) as c:
        r = await c.post("/v1/recommend", json={**REQ, "user_key": "u1"})
        assert r.status_code == 200 and r.json()["impression_id"] not in _stored(tmp_path)
        gate.set()
        assert c.app.state.gateway.sink.flush(10)  # type: ignore[attr-defined]
    assert _stored(tmp_path) == [r.json()["impression_id"]]


async def test_a_spool_replayed_twice_counts_each_impression_once(tmp_path: Path) -> None:
    """A crash between a spool file's replay and its removal replays it again on restart."""
    gate, entered = threading.Event(), threading.Event()
    writers = _writers(
        tmp_path,
        **{"imp-ack": Broken, "imp": lambda: Gated(tmp_path / "logs", gate, entered)},
    )
    spool, kept = tmp_path / "spool", tmp_path / "spool-copy"
    kept.mkdir()
    served: dict[str, list[int]] = {}
    parts = GatewayParts(writer_factory=writers)
    async with client(
        tmp_path, ScriptedBackend(GOOD), parts=parts, impression_durability="ack"
    ) as c:
        for i in range(5):
            body = {**REQ, "user_key": f"u{i}"}
            iid = (await c.post("/v1/recommend", json=body)).json()["impression_id"]
            positions = [0] if i % 2 else [0, 1]
            click = {"impression_id": iid, "user_key": f"u{i}", "positions": positions}
            assert (await c.post("/v1/feedback", json=click)).status_code == 200
            served[iid] = positions
        await asyncio.to_thread(entered.wait, 5)  # the replay is writing: copy its files
        for p in spool.glob("spool-*.jsonl*"):
            shutil.copy(p, kept / p.name)
        gate.set()
        assert c.app.state.gateway.sink.flush(10)  # type: ignore[attr-defined]
    text = b"".join(p.read_bytes() for p in kept.iterdir())
    assert all(iid.encode() in text for iid in served)
    # The crash left the replayed file behind, owned by a process that is gone.
    (spool / "spool-4242-dead00.jsonl.1").write_bytes(text)
    async with client(tmp_path, ScriptedBackend(GOOD), impression_durability="ack") as c:
        assert c.app.state.gateway.sink.flush(10)  # type: ignore[attr-defined]
        stats = (await c.get("/v1/stats", params={"fresh": "true"})).json()
    assert sorted(_stored(tmp_path)) == sorted([*served, *served])  # in the store twice
    assert stats["arms"][0]["impressions"] == 5 and stats["arms"][0]["clicks"] == 8
    reader = LogReader(tmp_path / "logs")
    joined = {i.impression_id: sorted(c) for i, c in reader.impressions_with_clicks()}
    assert joined == served and reader.stats.duplicate_impressions == 5


def test_spool_takes_over_a_dead_process_files_but_not_a_live_one(tmp_path: Path) -> None:
    live, mine = Spool(tmp_path), Spool(tmp_path)
    live.open()
    live.append(b'{"live": 1}\n')
    (tmp_path / "spool-77.jsonl").write_bytes(b'{"old": 1}\n{"torn')  # the layout before tokens
    mine.open()
    assert mine.adopt() == 1
    ready = mine.ready_files()
    assert [p.read_bytes() for p in ready] == [b'{"old": 1}\n{"torn']
    assert live.current.exists()  # a live process's file is never taken
    live.close()
    assert [p.name for p in tmp_path.glob("spool-*.lock")] == [f"spool-{mine.token}.lock"]
    assert len(mine.ready_files()) == 2  # the live one stopped: now adopted
    mine.close()


def test_a_torn_spool_line_is_skipped_on_replay(tmp_path: Path) -> None:
    from gqr_serving.gateway.sink import ImpressionSink

    good = _record("iid-good").model_dump_json().encode()
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "spool-5-dead01.jsonl").write_bytes(good + b"\n" + good[:40])
    sink = ImpressionSink(_writers(tmp_path), tmp_path / "spool")
    sink.start()
    try:
        assert sink.flush(10)
    finally:
        sink.close()
    assert _stored(tmp_path) == ["iid-good"]
    assert not [p for p in os.listdir(tmp_path / "spool") if p.endswith(".jsonl")]


def _record(iid: str) -> ImpressionRecord:
    from gqr_contracts.base import utcnow

    return impression(
        iid, utcnow(), "what is green tea", ["a", "b", "c"], session_id="", user_key=""
    )


async def test_the_gateway_prunes_days_past_retention(tmp_path: Path) -> None:
    from datetime import timedelta

    from gqr_contracts.base import utcnow

    old, recent = _record("iid-old"), _record("iid-recent")
    old = old.model_copy(update={"ts": utcnow() - timedelta(days=40)})
    with LogWriter(tmp_path / "logs", writer_id="earlier") as w:
        w.write_many([old, recent])
    stale = time.time() - 2 * 86400
    for p in (tmp_path / "logs").rglob("*.jsonl"):
        os.utime(p, (stale, stale))
    async with client(tmp_path, ScriptedBackend(GOOD), log_retention_days=30) as c:
        for _ in range(100):
            metrics = (await c.get("/metrics")).text
            if 'gqr_gateway_log_retention_deleted_total{kind="impression"}' in metrics:
                break
            await asyncio.sleep(0.05)
    assert _metric(metrics, 'gqr_gateway_log_retention_deleted_total{kind="impression"}') == 1
    assert _stored(tmp_path) == ["iid-recent"]
