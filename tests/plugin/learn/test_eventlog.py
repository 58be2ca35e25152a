import asyncio
import errno
import json
import logging
import os
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections import defaultdict

import pytest

from ltrr.plugin.errors import EventLogError
from ltrr.plugin.learn.eventlog import EventLog, Position


def frame(payload):
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def segment(directory, number):
    return directory / f"events-{number:012d}.log"


def segment_names(directory):
    return sorted(p.name for p in directory.glob("events-*.log"))


@pytest.fixture
def open_logs():
    logs = []

    def open_log(*args, **kwargs):
        log = EventLog(*args, **kwargs)
        logs.append(log)
        return log

    yield open_log
    for log in logs:
        log.close()


def test_append_then_pending_round_trips_the_exact_bytes(tmp_path, open_logs):
    log = open_logs(tmp_path)
    payloads = [b'{"event":"click"}', b"\x00\n\xff binary \r\n"]

    end = log.append(payloads)

    assert end == Position(1, len(frame(payloads[0])) + len(frame(payloads[1])))
    assert segment(tmp_path, 1).read_bytes() == frame(payloads[0]) + frame(payloads[1])
    assert log.pending() == (payloads, end)
    assert log.checkpoint == Position(1, 0)
    assert log.backlog() == end.offset


def test_pending_on_an_empty_log_returns_the_checkpoint(tmp_path, open_logs):
    log = open_logs(tmp_path)
    assert log.pending() == ([], Position(1, 0))
    assert log.backlog() == 0


def test_commit_hides_shipped_records_and_ignores_older_positions(tmp_path, open_logs):
    log = open_logs(tmp_path)
    log.append([b"a", b"b", b"c"])

    first_two, position = log.pending(limit=2)
    assert first_two == [b"a", b"b"]
    log.commit(position)

    assert log.checkpoint == position
    assert json.loads((tmp_path / "checkpoint.json").read_text()) == {
        "segment": 1,
        "offset": position.offset,
    }
    later = log.append([b"d"])
    assert log.pending() == ([b"c", b"d"], later)
    assert log.backlog() == later.offset - position.offset

    log.commit(Position(1, 0))
    assert log.checkpoint == position
    assert log.pending()[0] == [b"c", b"d"]


def test_commit_beyond_the_end_is_refused(tmp_path, open_logs):
    log = open_logs(tmp_path)
    end = log.append([b"a"])
    with pytest.raises(ValueError, match="beyond the end"):
        log.commit(Position(1, end.offset + 1))
    with pytest.raises(ValueError, match="beyond the end"):
        log.commit(Position(7, 0))
    assert log.checkpoint == Position(1, 0)


def test_reopen_keeps_unshipped_records_and_the_checkpoint(tmp_path):
    log = EventLog(tmp_path)
    log.append([b"shipped", b"unshipped-1"])
    _, position = log.pending(limit=1)
    log.commit(position)
    end = log.append([b"unshipped-2"])
    log.close()

    reopened = EventLog(tmp_path)
    try:
        assert reopened.checkpoint == position
        assert reopened.pending() == ([b"unshipped-1", b"unshipped-2"], end)
        assert reopened.append([b"new"]) > end
        assert reopened.pending()[0] == [b"unshipped-1", b"unshipped-2", b"new"]
    finally:
        reopened.close()


@pytest.mark.parametrize("damage", ["half_frame", "bad_crc", "short_header", "zero_fill"])
def test_a_torn_tail_is_dropped_on_reopen(tmp_path, caplog, damage):
    log = EventLog(tmp_path)
    kept = log.append([b"kept-1", b"kept-2"])
    if damage == "bad_crc":
        log.append([b"last-record"])
    log.close()
    path = segment(tmp_path, 1)
    data = path.read_bytes()
    if damage == "half_frame":
        torn = frame(b"torn" * 10)
        path.write_bytes(data + torn[: len(torn) // 2])
    elif damage == "bad_crc":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 0x01]))
    elif damage == "short_header":
        path.write_bytes(data + b"\x05\x00")
    else:
        path.write_bytes(data + b"\x00" * 4096)

    caplog.set_level(logging.WARNING, logger="ltrr.eventlog")
    reopened = EventLog(tmp_path)
    try:
        assert path.stat().st_size == kept.offset
        assert reopened.pending() == ([b"kept-1", b"kept-2"], kept)
        assert "torn" in caplog.text
        assert str(path) in caplog.text

        after = reopened.append([b"after"])
        assert after == Position(1, kept.offset + len(frame(b"after")))
        assert reopened.pending() == ([b"kept-1", b"kept-2", b"after"], after)
    finally:
        reopened.close()


def test_a_clean_reopen_logs_no_warning(tmp_path, caplog):
    EventLog(tmp_path).close()
    log = EventLog(tmp_path)
    log.append([b"x"])
    log.close()
    caplog.set_level(logging.WARNING, logger="ltrr.eventlog")
    EventLog(tmp_path).close()
    assert caplog.records == []


def test_segments_roll_and_shipped_segments_are_deleted(tmp_path):
    payloads = [b"%02d" % i * 10 for i in range(5)]  # 20 bytes each, 28 bytes framed
    log = EventLog(tmp_path, segment_bytes=60)  # two frames per segment

    assert log.append(payloads[:2]) == Position(1, 56)
    assert log.append(payloads[2:]) == Position(3, 28)
    assert [segment(tmp_path, n).stat().st_size for n in (1, 2, 3)] == [56, 56, 28]
    assert log.backlog() == 140
    assert log.pending() == (payloads, Position(3, 28))

    first_three, position = log.pending(limit=3)
    assert (first_three, position) == (payloads[:3], Position(2, 28))
    log.commit(position)
    assert segment_names(tmp_path) == [segment(tmp_path, n).name for n in (2, 3)]
    assert log.backlog() == 56

    fourth, position = log.pending(limit=1)
    assert fourth == [payloads[3]]
    assert position == Position(3, 0)  # the end of a finished segment is the next one's start
    log.commit(position)
    assert segment_names(tmp_path) == [segment(tmp_path, 3).name]
    assert log.backlog() == 28
    log.close()

    reopened = EventLog(tmp_path, segment_bytes=60)
    try:
        assert reopened.checkpoint == Position(3, 0)
        assert reopened.pending() == ([payloads[4]], Position(3, 28))
        big = b"B" * 100  # larger than a segment: gets one of its own, never split
        assert reopened.append([big]) == Position(4, 108)
        assert reopened.pending() == ([payloads[4], big], Position(4, 108))
    finally:
        reopened.close()


def test_a_corrupt_record_in_an_earlier_segment_is_an_error(tmp_path):
    log = EventLog(tmp_path, segment_bytes=20)
    for payload in (b"first-rec", b"second-re", b"third-rec"):
        log.append([payload])
    log.close()
    assert len(segment_names(tmp_path)) == 3
    path = segment(tmp_path, 1)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))

    reopened = EventLog(tmp_path, segment_bytes=20)
    try:
        with pytest.raises(EventLogError, match="corrupt") as info:
            reopened.pending()
        assert str(path) in str(info.value)
        assert path.read_bytes() == bytes(data)  # never "repaired" by dropping fsync'd data
    finally:
        reopened.close()


def test_leftovers_of_a_crash_during_commit_are_cleaned_up(tmp_path):
    log = EventLog(tmp_path, segment_bytes=20)
    for payload in (b"first-rec", b"second-re"):
        log.append([payload])
    log.commit(log.pending(limit=1)[1])
    log.close()
    assert segment_names(tmp_path) == [segment(tmp_path, 2).name]
    # The crash came after the checkpoint's rename but before the unlink, and mid-way the next
    # checkpoint's temp file.
    segment(tmp_path, 1).write_bytes(frame(b"first-rec"))
    (tmp_path / "checkpoint.json.tmp").write_text('{"segm')

    reopened = EventLog(tmp_path, segment_bytes=20)
    try:
        assert reopened.pending()[0] == [b"second-re"]
        assert segment_names(tmp_path) == [segment(tmp_path, 2).name]
        assert not (tmp_path / "checkpoint.json.tmp").exists()
    finally:
        reopened.close()


def test_an_unreadable_checkpoint_is_an_error(tmp_path):
    EventLog(tmp_path).close()
    (tmp_path / "checkpoint.json").write_text('{"segment": "1", "offset": 0}')
    with pytest.raises(EventLogError, match="checkpoint"):
        EventLog(tmp_path)
    (tmp_path / "checkpoint.json").write_text("not json")
    with pytest.raises(EventLogError, match="not JSON"):
        EventLog(tmp_path)
    (tmp_path / "checkpoint.json").write_text('{"segment": 1, "offset": 0}')
    EventLog(tmp_path).close()  # and the failed opens released the lock


def test_a_second_log_on_the_same_directory_is_refused(tmp_path):
    first = EventLog(tmp_path)
    with pytest.raises(EventLogError, match="locked by another process") as info:
        EventLog(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert f"pid {os.getpid()}" in str(info.value)
    first.close()
    first.close()  # idempotent
    EventLog(tmp_path).close()


def test_a_closed_log_refuses_work(tmp_path):
    log = EventLog(tmp_path)
    log.close()
    with pytest.raises(EventLogError, match="closed"):
        log.append([b"x"])
    with pytest.raises(EventLogError, match="closed"):
        log.pending()
    with pytest.raises(EventLogError, match="closed"):
        asyncio.run(log.append_async([b"x"]))


def test_bad_records_are_refused_before_anything_is_written(tmp_path, open_logs):
    log = open_logs(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        log.append([b"ok", b""])
    with pytest.raises(TypeError, match="sequence"):
        log.append(b"abc")
    with pytest.raises(TypeError, match="str"):
        log.append([b"ok", "text"])
    assert log.backlog() == 0
    assert segment(tmp_path, 1).read_bytes() == b""


def test_pending_never_sees_a_record_still_being_written(tmp_path, open_logs, monkeypatch):
    log = open_logs(tmp_path)
    done = log.append([b"done"])
    real_write = os.write
    half_written = threading.Event()
    finish = threading.Event()

    def slow_write(fd, data):
        if half_written.is_set():
            return real_write(fd, data)
        written = real_write(fd, bytes(data[: len(data) // 2]))
        half_written.set()
        finish.wait(5)
        return written

    monkeypatch.setattr(os, "write", slow_write)
    writer = threading.Thread(target=log.append, args=([b"in-flight" * 100],))
    writer.start()
    try:
        assert half_written.wait(5)
        assert segment(tmp_path, 1).stat().st_size > done.offset
        assert log.pending() == ([b"done"], done)
        assert log.backlog() == done.offset
    finally:
        finish.set()
        writer.join(5)
    assert log.pending()[0] == [b"done", b"in-flight" * 100]


def test_append_async_group_commits_in_call_order(tmp_path, open_logs, monkeypatch):
    real_fsync = os.fsync
    synced_sizes = []  # size of the segment at each fsync of a regular file

    def slow_fsync(fd):
        real_fsync(fd)
        if stat.S_ISREG(os.fstat(fd).st_mode):
            synced_sizes.append(os.fstat(fd).st_size)
        time.sleep(0.002)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    log = open_logs(tmp_path)
    calls = 200
    call_order = []

    async def producer(i):
        await asyncio.sleep((i % 7) * 0.001)
        records = [b"event-%d-%d" % (i, j) for j in range(1 + (i % 3 == 0))]
        call_order.extend(records)
        position = await log.append_async(records)
        return records, position, max(synced_sizes, default=0)

    async def main():
        return await asyncio.gather(*(producer(i) for i in range(calls)))

    results = asyncio.run(main())

    for _, position, durable in results:
        assert durable >= position.offset  # answered only after an fsync covered the records
    records, end = log.pending(limit=10_000)
    assert records == call_order
    by_call = sorted(results, key=lambda result: call_order.index(result[0][0]))
    positions = [position for _, position, _ in by_call]
    assert positions == sorted(positions)
    assert len(set(positions)) == calls
    assert positions[-1] == end
    assert 1 <= len(synced_sizes) < calls // 4


def test_a_failed_fsync_fails_every_waiter_of_the_batch(tmp_path, monkeypatch):
    log = EventLog(tmp_path)
    log.append([b"before"])

    def broken_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)

    async def main():
        appends = (log.append_async([b"x%d" % i]) for i in range(5))
        return await asyncio.gather(*appends, return_exceptions=True)

    results = asyncio.run(main())
    assert [getattr(result, "errno", result) for result in results] == [errno.EIO] * 5
    with pytest.raises(EventLogError, match="reopen"):
        log.append([b"after"])
    monkeypatch.undo()
    log.close()

    reopened = EventLog(tmp_path)
    try:
        reopened.append([b"after"])
        records = reopened.pending()[0]
        assert (records[0], records[-1]) == (b"before", b"after")
    finally:
        reopened.close()


CHILD = textwrap.dedent(
    """
    import asyncio, os, sys, threading
    from pathlib import Path
    from ltrr.plugin.learn.eventlog import EventLog

    log = EventLog(Path(sys.argv[1]), segment_bytes=32 * 1024)
    PAD = b"." * 1500

    def say(line):
        os.write(1, (line + "\\n").encode())  # one write: lines never interleave

    def sync_writer():
        i = 0
        while True:
            log.append([b"t-%d " % i + PAD])
            say(f"ack t-{i}")
            i += 1

    async def producer(k):
        i = 0
        while True:
            await log.append_async([b"a%d-%d " % (k, i) + PAD])
            say(f"ack a{k}-{i}")
            i += 1

    async def shipper():
        while True:
            records, position = log.pending(limit=40)
            if records:
                say("ship " + " ".join(r.split(b" ")[0].decode() for r in records))
                log.commit(position)
                say("committed")
            await asyncio.sleep(0.003)

    async def main():
        threading.Thread(target=sync_writer, daemon=True).start()
        await asyncio.gather(shipper(), *(producer(k) for k in range(8)))

    asyncio.run(main())
    """
)


def test_every_acknowledged_record_survives_sigkill_exactly_once(tmp_path):
    directory = tmp_path / "log"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    watchdog = threading.Timer(20, child.kill)
    watchdog.start()
    try:
        output = b""
        acks = 0
        while acks < 600:
            line = child.stdout.readline()
            assert line, child.stderr.read().decode()
            output += line
            acks += line.startswith(b"ack ")
        with pytest.raises(EventLogError, match="locked"):
            EventLog(directory)
        os.kill(child.pid, signal.SIGKILL)
        output += child.stdout.read()
        assert child.wait() == -signal.SIGKILL
    finally:
        watchdog.cancel()
        child.stdout.close()
        child.stderr.close()

    acked, committed, in_doubt = [], [], []
    for line in output.decode().split("\n")[:-1]:  # a cut-off last line was never printed
        kind, _, rest = line.partition(" ")
        if kind == "ack":
            acked.append(rest)
        elif kind == "ship":
            in_doubt = rest.split()
        else:
            assert kind == "committed"
            committed += in_doubt
            in_doubt = []

    log = EventLog(directory, segment_bytes=32 * 1024)
    try:
        replayed = [record.split(b" ")[0].decode() for record in log.pending(limit=100_000)[0]]
    finally:
        log.close()

    assert len(committed) == len(set(committed)) > 0  # shipped records were never handed out twice
    assert len(replayed) == len(set(replayed))
    assert not set(replayed) & set(committed)  # committed records are not replayed
    survivors = set(committed) | set(in_doubt) | set(replayed)
    assert set(acked) <= survivors
    # Per writer the records form a gap-free run: the only extras are unacknowledged tail ones.
    indexes = defaultdict(set)
    for record in survivors:
        writer, _, index = record.rpartition("-")
        indexes[writer].add(int(index))
    assert set(indexes) == {"t", *(f"a{k}" for k in range(8))}
    for found in indexes.values():
        assert found == set(range(len(found)))
