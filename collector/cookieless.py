"""Cookieless visitor ids: a keyed hash of site + IP + user agent with a daily salt.

The salt is 32 random bytes for one UTC day, shared by the collector's workers through
``<data>/salt/YYYY-MM-DD`` (0600).  On the first use after midnight (and every minute
from ``serve``'s sweep) every other day's file is deleted and the cache dropped, so
yesterday's ids cannot be recomputed: the same browser is one visitor within a day and
a new one the next.  See docs/privacy.md for the trade-offs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path


class DailySalt:
    def __init__(self, directory: Path | None, clock: Callable[[], float] = time.time):
        self.dir = directory
        self.clock = clock
        self._day = ""
        self._salt = b""
        self._lock = threading.Lock()

    def today(self) -> str:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC).strftime("%Y-%m-%d")

    def salt(self) -> bytes:
        day = self.today()
        if day != self._day:
            with self._lock:
                if day != self._day:
                    self._salt = self._load(day)
                    self._day = day
        return self._salt

    def _load(self, day: str) -> bytes:
        if self.dir is None:
            return secrets.token_bytes(32)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.sweep(keep=day)
        path = self.dir / day
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another worker made today's salt
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
        for _ in range(50):  # the other worker may still be writing it
            data = path.read_bytes()
            if len(data) == 32:
                return data
            time.sleep(0.01)
        raise RuntimeError(f"salt file {path} is not 32 bytes")

    def sweep(self, keep: str | None = None) -> list[str]:
        """Delete every salt file but today's; returns the days deleted."""
        keep = keep or self.today()
        gone = []
        if self.dir is not None and self.dir.exists():
            for p in self.dir.iterdir():
                if p.name != keep:
                    p.unlink(missing_ok=True)
                    gone.append(p.name)
        if self._day and self._day != keep:
            self._day, self._salt = "", b""
        return sorted(gone)

    def visitor_id(self, site: str, ip: str, user_agent: str) -> str:
        """32 hex digits, like a cookie id; unrecoverable once the day's salt is gone."""
        msg = f"{site}\x1f{ip}\x1f{user_agent}".encode()
        return hashlib.blake2b(msg, key=self.salt(), digest_size=16).hexdigest()
