"""Durable, append-only log of feedback events, so that an acknowledged event survives a crash.

The proxy answers 202 only after ``append`` (or ``append_async``) returned, which is after the
records were fsync'd. A crash can therefore only tear the unacknowledged tail, which reopening
drops; a shipper reads ``pending`` records, indexes them, then ``commit``s so they are never handed
out again. Records are ``<length u32 LE><crc32 u32 LE><payload>`` frames in numbered segment files;
``checkpoint.json`` holds the position the shipper committed.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ltrr.plugin.errors import EventLogError, LtrrError

log = logging.getLogger("ltrr.eventlog")

_HEADER = struct.Struct("<II")
_MAX_PAYLOAD = 2**32 - 1
_SEGMENT_RE = re.compile(r"events-(\d{12})\.log")
_CHECKPOINT = "checkpoint.json"
_CHECKPOINT_TMP = "checkpoint.json.tmp"
_LOCK = "lock"


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """A frame boundary; positions compare in log order because segment numbers only grow."""

    segment: int
    offset: int


class _BadFrame(LtrrError):
    """Raised by the frame reader so that callers decide: torn tail or corruption."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"{reason} at byte {offset}")
        self.offset = offset


@dataclass(eq=False, slots=True)
class _Waiter:
    frames: list[bytes]
    future: asyncio.Future[Position]


def _segment_name(segment: int) -> str:
    return f"events-{segment:012d}.log"


def _encode(records: Sequence[bytes]) -> list[bytes]:
    """Frames records up front, so a bad record fails its caller before anything is written."""
    if isinstance(records, bytes | bytearray | memoryview):
        raise TypeError("records must be a sequence of bytes payloads, not one bytes object")
    frames = []
    for record in records:
        if not isinstance(record, bytes | bytearray | memoryview):
            raise TypeError(f"a record must be bytes, not {type(record).__name__}")
        payload = bytes(record)
        if not payload:
            # An empty frame is all zeros: indistinguishable from zero-filled blocks after a crash.
            raise ValueError("a record must not be empty")
        if len(payload) > _MAX_PAYLOAD:
            raise ValueError(f"a record must be at most {_MAX_PAYLOAD} bytes")
        frames.append(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
    return frames


def _read_frames(file: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int]]:
    """Yields (payload, offset after it) for the frames in [start, end); raises _BadFrame."""
    file.seek(start)
    offset = start
    while offset < end:
        if offset + _HEADER.size > end:
            raise _BadFrame(offset, "short frame header")
        header = file.read(_HEADER.size)
        if len(header) < _HEADER.size:
            raise _BadFrame(offset, "short frame header")
        length, crc = _HEADER.unpack(header)
        if length == 0:
            raise _BadFrame(offset, "empty frame")
        stop = offset + _HEADER.size + length
        if stop > end:
            raise _BadFrame(offset, "short frame payload")
        payload = file.read(length)
        if len(payload) < length:
            raise _BadFrame(offset, "short frame payload")
        if zlib.crc32(payload) != crc:
            raise _BadFrame(offset, "CRC mismatch")
        yield payload, stop
        offset = stop


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class EventLog:
    """One process's durable feedback log; the directory is flocked so replicas never share it."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        fsync: bool = True,
    ) -> None:
        if segment_bytes < 1:
            raise ValueError(f"segment_bytes must be positive, not {segment_bytes}")
        self._dir = Path(directory)
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        # Lock order: _write_lock or _ship_lock first, then _state_lock; never the reverse.
        self._write_lock = threading.Lock()  # the active file's offset and rolling
        self._ship_lock = threading.Lock()  # pending/commit never read a segment being deleted
        self._state_lock = threading.Lock()  # published sizes and the checkpoint
        self._sizes: dict[int, int] = {}  # segment -> bytes written and fsync'd (published)
        self._checkpoint = Position(1, 0)
        self._active = 1
        self._size = 0
        self._fd = -1
        self._closed = False
        self._failed: BaseException | None = None
        self._waiting: list[_Waiter] = []
        self._flusher: asyncio.Task[None] | None = None
        self._dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._take_lock()
        try:
            self._recover()
        except BaseException:
            self._release()
            raise

    # -- writing -------------------------------------------------------------------------------

    def append(self, records: Sequence[bytes]) -> Position:
        """Returns only once the records are on disk, so the caller may acknowledge them."""
        return self._write_groups([_encode(records)])[0]

    async def append_async(self, records: Sequence[bytes]) -> Position:
        """Shares one write+fsync among concurrent callers, so throughput is not one fsync each."""
        frames = _encode(records)
        self._check_writable()
        loop = asyncio.get_running_loop()
        waiter = _Waiter(frames, loop.create_future())
        self._waiting.append(waiter)
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush_waiting())
        try:
            return await waiter.future
        except asyncio.CancelledError:
            # Not yet taken into a batch: withdraw it, so an unacknowledged record is not shipped.
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            raise

    async def _flush_waiting(self) -> None:
        """Whoever queued while a batch was being fsync'd forms the next batch."""
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                ends = await loop.run_in_executor(
                    None, self._write_groups, [waiter.frames for waiter in batch]
                )
            except asyncio.CancelledError:
                for waiter in batch + self._waiting:
                    waiter.future.cancel()
                self._waiting = []
                raise
            except Exception as exc:
                for waiter in batch:
                    if not waiter.future.done():
                        waiter.future.set_exception(exc)
                continue
            for waiter, end in zip(batch, ends, strict=True):
                if not waiter.future.done():
                    waiter.future.set_result(end)

    def _write_groups(self, groups: list[list[bytes]]) -> list[Position]:
        """Writes frame groups in order; returns the position after each group."""
        with self._write_lock:
            self._check_writable()
            try:
                ends = []
                chunk = bytearray()
                size = self._size
                for frames in groups:
                    for frame in frames:
                        if size > 0 and size + len(frame) > self._segment_bytes:
                            self._flush(chunk)
                            chunk.clear()
                            self._roll()
                            size = 0
                        chunk += frame
                        size += len(frame)
                    ends.append(Position(self._active, size))
                self._flush(chunk)
            except BaseException as exc:
                # After a failed write or fsync the file's state is unknown (the kernel may have
                # dropped the dirty pages): refuse further writes instead of guessing.
                self._failed = exc
                raise
            return ends

    def _flush(self, chunk: bytearray) -> None:
        if not chunk:
            return
        _write_all(self._fd, chunk)
        if self._fsync:
            os.fsync(self._fd)
        self._size += len(chunk)
        with self._state_lock:
            self._sizes[self._active] = self._size

    def _roll(self) -> None:
        """Starts the next segment; the previous one was fsync'd by the flush before."""
        os.close(self._fd)
        self._fd = -1
        segment = self._active + 1
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL
        self._fd = os.open(self._path(segment), flags, 0o644)
        self._sync_dir()
        self._active = segment
        self._size = 0
        with self._state_lock:
            self._sizes[segment] = 0

    # -- shipping ------------------------------------------------------------------------------

    def pending(self, limit: int = 1000) -> tuple[list[bytes], Position]:
        """Hands the shipper the oldest unshipped records; only fsync'd ones are visible."""
        with self._ship_lock:
            self._check_open()
            with self._state_lock:
                checkpoint = self._checkpoint
                sizes = sorted((s, n) for s, n in self._sizes.items() if s >= checkpoint.segment)
            records: list[bytes] = []
            position = checkpoint
            for segment, size in sizes:
                if len(records) >= limit:
                    break
                start = checkpoint.offset if segment == checkpoint.segment else 0
                if start >= size:
                    continue
                path = self._path(segment)
                with path.open("rb") as file:
                    try:
                        for payload, stop in _read_frames(file, start, size):
                            records.append(payload)
                            position = Position(segment, stop)
                            if len(records) >= limit:
                                break
                    except _BadFrame as exc:
                        raise EventLogError(
                            f"event log segment {path} is corrupt ({exc}) inside data that was "
                            "already fsync'd; move it aside to let the proxy start"
                        ) from None
            if records:
                position = _past_sealed(position, dict(sizes))
            return records, position

    def commit(self, position: Position) -> None:
        """Makes shipped records durable as shipped, so a restart never replays them."""
        with self._ship_lock:
            self._check_open()
            with self._state_lock:
                if position <= self._checkpoint:
                    return
                size = self._sizes.get(position.segment)
                if size is None or position.offset > size:
                    raise ValueError(f"{position} lies beyond the end of the event log")
                position = _past_sealed(position, self._sizes)
            self._write_checkpoint(position)
            with self._state_lock:
                self._checkpoint = position
                shipped = [segment for segment in self._sizes if segment < position.segment]
                for segment in shipped:
                    del self._sizes[segment]
            for segment in shipped:
                self._path(segment).unlink(missing_ok=True)

    @property
    def checkpoint(self) -> Position:
        """The shipper's durable progress: records before it are never handed out again."""
        with self._state_lock:
            return self._checkpoint

    def backlog(self) -> int:
        """Unshipped bytes, from sizes kept in memory so that stats never touch the disk."""
        with self._state_lock:
            checkpoint = self._checkpoint
            total = sum(n for s, n in self._sizes.items() if s >= checkpoint.segment)
            if checkpoint.segment in self._sizes:
                total -= min(checkpoint.offset, self._sizes[checkpoint.segment])
            return total

    def close(self) -> None:
        """Releases the flock, so that a restarted proxy can take the directory over."""
        with self._write_lock, self._ship_lock:
            if self._closed:
                return
            self._closed = True
            self._release()

    # -- opening -------------------------------------------------------------------------------

    def _take_lock(self) -> int:
        path = self._dir / _LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = path.read_text(errors="replace").strip() or "unknown"
            raise EventLogError(
                f"event log directory {self._dir} is locked by another process (pid {holder}); "
                "each proxy replica needs its own data directory"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def _recover(self) -> None:
        """Replays what a crash left: drops the torn tail, and shipped segments not yet deleted."""
        (self._dir / _CHECKPOINT_TMP).unlink(missing_ok=True)
        segments = self._segments()
        checkpoint = self._read_checkpoint()
        if checkpoint is None:
            checkpoint = Position(segments[0] if segments else 1, 0)
        for segment in segments:
            if segment < checkpoint.segment:
                self._path(segment).unlink()
        segments = [segment for segment in segments if segment >= checkpoint.segment]
        if not segments:
            self._path(checkpoint.segment).touch()
            self._sync_dir()
            segments = [checkpoint.segment]
        last = segments[-1]
        for segment in segments[:-1]:
            self._sizes[segment] = self._path(segment).stat().st_size
        end = self._truncate_torn_tail(last, checkpoint.offset if last == checkpoint.segment else 0)
        self._sizes[last] = end
        self._checkpoint = checkpoint
        if last == checkpoint.segment and end < checkpoint.offset:
            # Only possible with fsync=False: appending here would hide new records behind it.
            log.warning(
                "event log checkpoint %s lies beyond the end of %s (%d bytes); starting segment %d",
                checkpoint,
                self._path(last),
                end,
                last + 1,
            )
            last += 1
            self._path(last).touch()
            self._sync_dir()
            self._sizes[last] = 0
            self._checkpoint = Position(last, 0)
            self._write_checkpoint(self._checkpoint)
            self._path(last - 1).unlink()
            del self._sizes[last - 1]
        self._active = last
        self._size = self._sizes[last]
        self._fd = os.open(self._path(last), os.O_WRONLY | os.O_APPEND)

    def _truncate_torn_tail(self, segment: int, start: int) -> int:
        path = self._path(segment)
        with path.open("r+b") as file:
            size = os.fstat(file.fileno()).st_size
            if size < start:
                return size
            end = start
            try:
                for _, stop in _read_frames(file, start, size):
                    end = stop
            except _BadFrame as exc:
                log.warning(
                    "dropping %d bytes of torn, never acknowledged records at the end of %s (%s)",
                    size - exc.offset,
                    path,
                    exc,
                )
                file.truncate(exc.offset)
                if self._fsync:
                    os.fsync(file.fileno())
                end = exc.offset
            return end

    def _segments(self) -> list[int]:
        return sorted(
            int(match.group(1))
            for entry in self._dir.iterdir()
            if (match := _SEGMENT_RE.fullmatch(entry.name))
        )

    def _read_checkpoint(self) -> Position | None:
        path = self._dir / _CHECKPOINT
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise EventLogError(f"event log checkpoint {path} is not JSON: {exc}") from None
        if (
            not isinstance(data, dict)
            or not all(type(data.get(key)) is int for key in ("segment", "offset"))
            or data["segment"] < 0
            or data["offset"] < 0
        ):
            raise EventLogError(
                f"event log checkpoint {path} must hold non-negative integers "
                f'"segment" and "offset", not {raw[:200]!r}'
            )
        return Position(data["segment"], data["offset"])

    def _write_checkpoint(self, position: Position) -> None:
        """Temp file, fsync, rename, fsync the directory: a crash leaves the old or the new one."""
        tmp = self._dir / _CHECKPOINT_TMP
        data = json.dumps({"segment": position.segment, "offset": position.offset})
        with tmp.open("wb") as file:
            file.write(data.encode())
            file.flush()
            if self._fsync:
                os.fsync(file.fileno())
        os.replace(tmp, self._dir / _CHECKPOINT)
        self._sync_dir()

    # -- helpers -------------------------------------------------------------------------------

    def _path(self, segment: int) -> Path:
        return self._dir / _segment_name(segment)

    def _sync_dir(self) -> None:
        """Makes created, renamed files survive a power cut, not only their contents."""
        if not self._fsync:
            return
        fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _check_open(self) -> None:
        if self._closed:
            raise EventLogError(f"event log {self._dir} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._failed is not None:
            raise EventLogError(
                f"an earlier write to event log {self._dir} failed ({self._failed!r}); "
                "reopen the log to recover"
            ) from self._failed

    def _release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1


def _past_sealed(position: Position, sizes: dict[int, int]) -> Position:
    """Moves a position at the end of a finished segment to the next one, so commit deletes it."""
    later = [segment for segment in sizes if segment > position.segment]
    if later and position.offset >= sizes.get(position.segment, 0):
        return Position(min(later), 0)
    return position
