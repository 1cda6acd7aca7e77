"""The matching rule for ``--skip-tracked``: a log line the pixel already recorded.

A log hit is the same page view as a pixel (or beacon) hit already in ClickHouse when

    same site, same IP prefix (IPv4 /24, IPv6 /48: what the collector stores),
    same URL path, and |log time - pixel time| <= window (default 10 s),

and each pixel hit matches at most one log line (the earliest-read one).  The IP
prefix, not IP + User-Agent, is compared because the hits table keeps no raw
User-Agent; the path and the time window make a false match unlikely.  Pixel hits
are loaded one UTC day at a time, when the first log line of that day needs them, from
a running serve's ``/api/sql`` (``--url``) or a ClickHouse DSN (``--clickhouse``).
"""

from __future__ import annotations

import bisect
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import orjson
from clickhouse_connect.driver.client import Client

from clickstream import warehouse
from clickstream.hit import Hit
from clickstream.ip import truncate_ip

DAY_MS = 86_400_000
Loader = Callable[[int, int], Iterable[tuple[str, str, int]]]  # (from_ms, to_ms) -> (ip, path, ts)


def _path(url: str) -> str:
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return "/"


class TrackedIndex:
    def __init__(self, loader: Loader, window_ms: int = 10_000):
        self.loader = loader
        self.window_ms = window_ms
        self.loaded_days: set[int] = set()
        self.pixel_hits = 0
        self._times: dict[tuple[str, str], list[int]] = {}

    def _load(self, day: int) -> None:
        if day in self.loaded_days:
            return
        self.loaded_days.add(day)
        for ip, path, ts in self.loader(day * DAY_MS, (day + 1) * DAY_MS):
            bisect.insort(self._times.setdefault((truncate_ip(ip), path), []), ts)
            self.pixel_hits += 1

    def matches(self, hit: Hit) -> bool:
        """True (and the pixel hit is used up) when the pixel already recorded this hit."""
        lo, hi = hit.ts - self.window_ms, hit.ts + self.window_ms
        for day in range(lo // DAY_MS, hi // DAY_MS + 1):
            self._load(day)
        times = self._times.get((truncate_ip(hit.ip), _path(hit.url)))
        if not times:
            return False
        i = bisect.bisect_left(times, lo)
        best = -1
        for j in range(i, len(times)):
            if times[j] > hi:
                break
            if best < 0 or abs(times[j] - hit.ts) < abs(times[best] - hit.ts):
                best = j
        if best < 0:
            return False
        del times[best]
        return True


_SQL = (
    "SELECT ip, path, toUnixTimestamp64Milli(ts) FROM {db}.hits FINAL "
    "WHERE site = {site} AND source != 'log' AND event IN ('pageview', 'search') "
    "AND ts >= fromUnixTimestamp64Milli({a}, 'UTC') AND ts < fromUnixTimestamp64Milli({b}, 'UTC')"
)


def clickhouse_loader(client: Client, database: str, site: str) -> Loader:
    """Page views of ``site`` from any source but log import, read-only, from a ClickHouse DSN."""
    sql = _SQL.format(
        db=warehouse.check_name(database), site="{site:String}", a="{a:Int64}", b="{b:Int64}"
    )

    def load(a: int, b: int) -> Iterable[tuple[str, str, int]]:
        result = warehouse.read_query(
            client, sql, {"site": site, "a": a, "b": b}, comment="import-log --skip-tracked"
        )
        return [(str(r[0]), str(r[1]), int(r[2])) for r in result.rows]

    return load


def sql_string(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def api_loader(url: str, token: str, database: str, site: str) -> Loader:
    """The same query through a running serve's read-only ``POST /api/sql``."""
    base = url.rstrip("/") + "/api/sql"

    def load(a: int, b: int) -> Iterable[tuple[str, str, int]]:
        sql = _SQL.format(
            db=warehouse.check_name(database), site=sql_string(site), a=int(a), b=int(b)
        )
        req = urllib.request.Request(
            base,
            data=sql.encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                rows = orjson.loads(resp.read())["rows"]
        except urllib.error.HTTPError as exc:
            raise TrackedError(
                f"{base} answered {exc.code}: {exc.read()[:200].decode(errors='replace')}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise TrackedError(f"cannot reach {base}: {exc}") from None
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    return load


class TrackedError(RuntimeError):
    """The pixel hits could not be read; the message says from where."""
