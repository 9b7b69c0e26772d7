"""Record factories for the log store tests (a uniquely named module, imported directly)."""

from __future__ import annotations

from datetime import UTC, datetime

from testsupport import records

from gqr_serving.records import ClickRecord, ImpressionRecord, QueryLogRecord

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def impression(i: int | str, ts: datetime = T0, n: int = 3) -> ImpressionRecord:
    queries = [f"q{i}-{k}" for k in range(n)]
    return records.impression(
        f"imp-{i}", ts, f"query {i}", queries, session_id=f"s-{i}", user_key="u"
    )


def click(i: int | str, position: int, ts: datetime = T0) -> ClickRecord:
    return ClickRecord(impression_id=f"imp-{i}", position=position, ts=ts)


def query(session: str, text: str, ts: datetime = T0) -> QueryLogRecord:
    return QueryLogRecord(session_id=session, ts=ts, query=text)


def random_store(root: object, seed: int, first_day: datetime, days: int = 3) -> None:
    """A store with what real traffic leaves: impressions under gateway ids (two arms), some
    written twice, clicks (repeated, invalid, on positions not shown, on no impression),
    queries (empty, equal-after-normalising, equal timestamps) and bad lines, over ``days``
    days from ``first_day``, in several segments."""
    import random
    from datetime import timedelta
    from pathlib import Path

    from gqr_serving.gateway.ids import Keys
    from gqr_serving.logstore import LogWriter
    from gqr_serving.records import ImpressionRecord, SideInfo

    keys = Keys(b"k" * 32)
    rng = random.Random(seed)
    out: list[object] = []
    span = days * 1440
    for i in range(rng.randrange(50, 400)):
        ts = first_day + timedelta(minutes=rng.randrange(span), microseconds=rng.randrange(10**6))
        n = rng.randrange(0, 6)
        arm = rng.choice(["stable", "canary"])
        iid = keys.new_impression_id(int(ts.timestamp() * 1000), n, arm, f"v{rng.randrange(2)}")
        imp = ImpressionRecord(
            impression_id=iid,
            ts=ts,
            deployment="local",
            task=rng.choice(["suggestion", "completion"]),
            arm=arm,
            model_version=f"v{rng.randrange(2)}",
            session_id=f"s{rng.randrange(30)}",
            user_key=rng.choice(["", "u1", "u2", f"u{i % 9}", "farm"]),
            query=f"query {i}",
            side_info=SideInfo(history=[f"h{k}" for k in range(rng.randrange(3))]),
            aux_texts={"k": "v"} if rng.random() < 0.2 else {},
            queries=[f"q{i}-{k}" for k in range(n)],
            fallback=rng.random() < 0.1,
        )
        out.append(imp)
        if rng.random() < 0.1:
            out.append(imp)  # a replayed spool
        clicky = imp.user_key == "farm" or rng.random() < 0.3
        for k in range(7):
            if clicky and rng.random() < 0.5:
                verdict = rng.choice([None, None, None, "too_fast", "user_click_rate"])
                delay = timedelta(seconds=rng.randrange(1, 3000))
                out.append(
                    ClickRecord(impression_id=iid, position=k, ts=ts + delay, invalid=verdict)
                )
    out.append(ClickRecord(impression_id="no-such-impression", position=0, ts=first_day))
    texts = ["tea", "Tea ", "coffee", "", "  ", "\uff54\uff45\uff41", "green tea", "milk"]
    for _ in range(rng.randrange(50, 300)):
        ts = first_day + timedelta(minutes=rng.randrange(span) // 50 * 50)  # equal times
        text = rng.choice(texts)
        out.append(QueryLogRecord(session_id=f"s{rng.randrange(40)}", ts=ts, query=text))
    rng.shuffle(out)
    with LogWriter(root, writer_id="gen", max_segment_bytes=20_000) as w:  # type: ignore[arg-type]
        for start in range(0, len(out), 97):
            w.write_many(out[start : start + 97])  # type: ignore[arg-type]
    if isinstance(root, Path) or "://" not in str(root):
        folder = Path(str(root)) / "impression"
        segment = sorted(folder.glob("*/*.jsonl"))[0]
        with segment.open("ab") as f:
            f.write(b'{"not": "an impression"}\nnot json\n{"torn')
