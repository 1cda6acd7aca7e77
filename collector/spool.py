"""The collector's local spool: append-only JSON-lines files of Hit records.

One file per writer process, named ``spool-<time_ns>-<pid>.jsonl`` so that a sorted
listing is the order of writing.  The writer holds an exclusive ``flock`` on its
open file; a replayer (this process or another one sharing the directory) takes
the same lock before reading a file, so a live writer's file is never replayed
under it, and a killed writer's file is free at once.  Replay progress is kept in
``<file>.done`` (a byte offset), so a crash during replay repeats at most one chunk.

fsync policy: ``always`` fsyncs before :meth:`Spool.append` returns (group commit:
one fsync covers every append before it); ``interval`` fsyncs once a second from a
background task; ``never`` leaves it to the OS.  A killed process loses nothing
in any mode (the data is in the page cache); only a power loss or kernel crash can
lose the last second (``interval``) or more (``never``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

PATTERN = "spool-*.jsonl"


class Spool:
    def __init__(self, directory: Path, fsync: str = "always", max_bytes: int = 1 << 30):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.max_bytes = max_bytes
        self._fd: int | None = None
        self._name: Path | None = None
        self._written = 0  # appends so far (sequence numbers for group commit)
        self._synced = 0
        self._sync_lock = asyncio.Lock()
        self.bytes = self.measure()

    # --- writing ------------------------------------------------------------------------
    def has_room(self, size: int) -> bool:
        return self.bytes + size <= self.max_bytes

    def append(self, records: list[bytes]) -> int:
        """Append records (one line each); returns the sequence number to :meth:`sync` on."""
        if self._fd is None:
            self._name = self.dir / f"spool-{time.time_ns():020d}-{os.getpid()}.jsonl"
            fd = os.open(self._name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd = fd
        data = b"".join(r + b"\n" for r in records)
        view = memoryview(data)
        while view:  # a regular file takes it in one write; loop for safety
            view = view[os.write(self._fd, view) :]
        self.bytes += len(data)
        self._written += 1
        return self._written

    async def sync(self, seq: int) -> None:
        """Return once append number ``seq`` is on disk (``always``), else at once."""
        if self.fsync != "always":
            return
        await self._sync_upto(seq)

    async def _sync_upto(self, seq: int) -> None:
        async with self._sync_lock:
            if self._synced >= seq or self._fd is None:
                return
            target = self._written
            await asyncio.to_thread(os.fsync, self._fd)
            self._synced = target

    async def sync_loop(self) -> None:
        """The ``interval`` policy: fsync once a second when something was written."""
        while True:
            await asyncio.sleep(1.0)
            if self._written > self._synced:
                await self._sync_upto(self._written)

    async def close_current(self) -> None:
        """Close this process's open file (fsynced) so that it can be replayed."""
        async with self._sync_lock:
            if self._fd is None:
                return
            if self.fsync != "never":
                await asyncio.to_thread(os.fsync, self._fd)
            os.close(self._fd)  # releases the flock
            self._synced = self._written
            self._fd = None
            self._name = None

    @property
    def writing(self) -> bool:
        return self._fd is not None

    # --- reading ------------------------------------------------------------------------
    def files(self) -> list[Path]:
        return sorted(self.dir.glob(PATTERN))

    def measure(self) -> int:
        total = 0
        for p in self.files():
            with contextlib.suppress(OSError):
                total += p.stat().st_size - _done_offset(p)
        return total

    @contextlib.contextmanager
    def claim(self, path: Path) -> Iterator[int | None]:
        """An fd of a spool file locked for replay, or None when a live writer holds it."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield None
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            yield fd
        finally:
            os.close(fd)

    def finish(self, path: Path) -> None:
        """Every record of ``path`` is in Kafka: remove it and its progress file."""
        size = path.stat().st_size - _done_offset(path)
        path.unlink()
        with contextlib.suppress(FileNotFoundError):
            _done_path(path).unlink()
        self.bytes = max(0, self.bytes - size)

    def mark(self, path: Path, offset: int, advanced: int) -> None:
        tmp = _done_path(path).with_suffix(".tmp")
        tmp.write_text(str(offset))
        tmp.replace(_done_path(path))
        self.bytes = max(0, self.bytes - advanced)


def read_from(fd: int, path: Path) -> tuple[int, bytes]:
    """(offset already replayed, the bytes after it) of a claimed file."""
    start = _done_offset(path)
    size = os.fstat(fd).st_size
    return start, os.pread(fd, max(0, size - start), start)


def _done_path(path: Path) -> Path:
    return path.with_name(path.name + ".done")


def _done_offset(path: Path) -> int:
    try:
        return int(_done_path(path).read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0
