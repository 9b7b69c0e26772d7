"""A writer process for the crash tests: prints ``ACK <impression_id>`` after each write returns.

python logstore_crash_writer.py ROOT WRITER_ID COUNT [STAGING_DIR]
Four threads call ``write``; the main thread calls ``write_many`` in batches of 50.
COUNT=0 writes until killed.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime, timedelta

from testsupport import records

from gqr_serving.logstore import LogWriter
from gqr_serving.records import ImpressionRecord

T0 = datetime(2024, 5, 1, 23, 59, 59, tzinfo=UTC)
_print_lock = threading.Lock()


def impression(writer: str, i: int) -> ImpressionRecord:
    return records.impression(
        f"{writer}:{i}",
        T0 + timedelta(milliseconds=i),  # crosses midnight: two day partitions
        "x" * (i % 300),  # varied sizes so a kill can land inside a large write
        ["a", "b", "c"],
        session_id=f"s{i % 17}",
        user_key="u",
    )


def ack(ids: list[str]) -> None:
    with _print_lock:
        sys.stdout.write("".join(f"ACK {i}\n" for i in ids))
        sys.stdout.flush()


def main() -> None:
    root, writer_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    staging = sys.argv[4] if len(sys.argv) > 4 else None
    w = LogWriter(root, writer_id, staging_dir=staging, max_segment_bytes=256 << 10)
    counter = iter(range(count or 10**12))
    take = threading.Lock()

    def next_ids(n: int) -> list[int]:
        with take:
            return [i for _, i in zip(range(n), counter, strict=False)]

    def singles() -> None:
        while ids := next_ids(1):
            rec = impression(writer_id, ids[0])
            w.write(rec)
            ack([rec.impression_id])

    threads = [threading.Thread(target=singles) for _ in range(4)]
    for t in threads:
        t.start()
    while ids := next_ids(50):
        recs = [impression(writer_id, i) for i in ids]
        w.write_many(recs)
        ack([r.impression_id for r in recs])
    for t in threads:
        t.join()
    w.close()
    ack(["DONE"])


if __name__ == "__main__":
    main()
