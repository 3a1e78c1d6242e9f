"""The dev stack's write-ahead journal: what moto acknowledged, on disk before the answer.

A frame is `length (4 bytes, big-endian) | CRC-32 of the payload (4 bytes) | payload`, the
payload being one JSON list of records: everything one request changed (a whole
TransactWriteItems or BatchWriteItem) is one frame, so a replay applies all of it or none.

Writers append under moto's request lock (so the journal's order is the order the changes
were applied in), then wait, outside the lock, until their frame is durable. One committer
thread writes and fsyncs whatever has accumulated: a request waits at most for the fsync in
progress plus its own, and N concurrent writers share one fsync (group commit) with no
added delay for a lone writer.

A crash can tear only the last frame (frames are appended and fsynced in order): `read`
stops at the first frame that is short or fails its checksum and reports how many bytes
it dropped; the start goes on with everything before it.
"""
from __future__ import annotations

import json
import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.durable import PRIVATE, fsync_directory

log = logging.getLogger("devstack.journal")

HEADER = struct.Struct(">II")
# No request produces a bigger frame (100 transaction items of at most 400 KB each); a
# larger length can only be a torn or damaged header.
MAX_FRAME = 64 * 1024 * 1024


class JournalError(Exception):
    """The journal cannot be written (disk full, I/O error): nothing after it is durable."""


def encode(records: list[dict[str, Any]]) -> bytes:
    payload = json.dumps(records, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass
class Replay:
    """What a journal file holds: its whole frames, in order, and the torn tail's size."""

    frames: list[list[dict[str, Any]]] = field(default_factory=list)
    valid_bytes: int = 0
    dropped_bytes: int = 0

    def records(self) -> list[dict[str, Any]]:
        return [record for frame in self.frames for record in frame]


def read(path: Path) -> Replay:
    """Every whole frame of the journal; a missing file is an empty journal."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Replay()
    replay = Replay()
    offset = 0
    while offset < len(data):
        frame = _frame_at(data, offset)
        if frame is None:
            break
        records, offset = frame
        replay.frames.append(records)
    replay.valid_bytes = offset
    replay.dropped_bytes = len(data) - offset
    return replay


def _frame_at(data: bytes, offset: int) -> tuple[list[dict[str, Any]], int] | None:
    """(records, next offset), or None when the frame there is torn or damaged."""
    end_of_header = offset + HEADER.size
    if end_of_header > len(data):
        return None
    length, checksum = HEADER.unpack_from(data, offset)
    end = end_of_header + length
    if length > MAX_FRAME or end > len(data):
        return None
    payload = data[end_of_header:end]
    if zlib.crc32(payload) != checksum:
        return None
    try:
        records = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return None
    return records, end


class Journal:
    """An open journal file taking appends (see the module docstring for the protocol)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        created = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE)
        if created:
            fsync_directory(path.parent)
        self._cond = threading.Condition()
        self._pending: list[bytes] = []
        self._appended = 0  # sequence number of the last appended frame
        self._durable = 0  # … and of the last one known to be on disk
        self._failed: OSError | None = None
        self._closing = False
        self._committer = threading.Thread(target=self._commit_loop, name="journal", daemon=True)
        self._committer.start()

    def append(self, records: list[dict[str, Any]]) -> int:
        """Queue one frame; its sequence number, for `wait`. Call in apply order."""
        frame = encode(records)
        with self._cond:
            if self._failed is not None:
                raise JournalError(f"the journal {self.path} cannot be written: {self._failed}")
            self._pending.append(frame)
            self._appended += 1
            self._cond.notify_all()
            return self._appended

    @property
    def last(self) -> int:
        """The sequence number of the last frame appended so far."""
        with self._cond:
            return self._appended

    def wait(self, sequence: int) -> None:
        """Return once frame `sequence` (and every frame before it) is on disk."""
        with self._cond:
            while self._durable < sequence:
                if self._failed is not None:
                    raise JournalError(f"the journal {self.path} cannot be written: {self._failed}")
                self._cond.wait()

    def truncate(self) -> None:
        """Empty the file once everything appended is durable (after a snapshot holds it).
        The caller keeps appends out meanwhile."""
        self.wait(self.last)
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)

    def close(self) -> None:
        """Flush what is queued, stop the committer, close the file."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._committer.join()
        os.close(self._fd)

    def _commit_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
                upto = self._appended
            try:
                _write_all(self._fd, b"".join(batch))
                os.fdatasync(self._fd)
            except OSError as err:
                log.error("journal: cannot write %s: %s; later writes will fail", self.path, err)
                with self._cond:
                    self._failed = err
                    self._cond.notify_all()
                return
            with self._cond:
                self._durable = upto
                self._cond.notify_all()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
