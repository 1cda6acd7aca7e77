"""One parsed log line -> one :class:`clickstream.hit.Hit`, or a skip reason.

Definitions (documented in importer/README.md):

- ``ts`` is the log's request time; ``received`` is the time the import started (the
  pipeline received the hit then), one value for the whole run.  The sessionizer closes
  idle sessions by ``received``: with the import's own clock, sessions of an old log are
  split only by their event-time gaps, whatever else shares the partition, so a
  re-import rebuilds the very same sessions.
- ``visitor_id`` = BLAKE2b-128 of ``IP + "\\x1f" + User-Agent`` (hex): the same
  definition of a visitor as GoAccess (IP + UA; per day in its report).
- ``hit_id`` = BLAKE2b-128 of ``site``, the full line text and the line's occurrence
  number among identical lines of the same file.  It does not depend on the file's
  name or the line's position, so importing the same file again, or a rotated copy
  that repeats lines, yields the same ids and adds nothing.
- Skipped by default (counted by reason): methods other than GET, statuses outside
  2xx and 304 (a redirect is not a page view: the browser asks for the target next, which
  is one; as Matomo's importer and AWStats count), static assets by extension.  All three
  are configurable.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from urllib.parse import unquote_plus

from clickstream.hit import MAX_TEXT, MAX_UA, MAX_URL, Hit
from clickstream.ip import canonical_ip, truncate_ip
from importer.formats import LineError, LogLine

STATIC_EXTENSIONS = frozenset(
    [
        "css",
        "js",
        "mjs",
        "map",
        "png",
        "jpg",
        "jpeg",
        "gif",
        "webp",
        "avif",
        "svg",
        "ico",
        "bmp",
        "tif",
        "tiff",
        "cur",
        "woff",
        "woff2",
        "ttf",
        "otf",
        "eot",
        "mp4",
        "webm",
        "m4v",
        "mov",
        "mp3",
        "ogg",
        "oga",
        "wav",
        "flac",
        "swf",
        "txt",
        "xml",
    ]
)
# files a visitor downloads: a `download` event, not a page (the tracker's own list of
# download clicks, less what is skipped as static; Matomo's importer and AWStats alike
# count these as downloads, not page views)
DOWNLOAD_EXTENSIONS = frozenset(
    [
        "pdf",
        "zip",
        "gz",
        "tgz",
        "bz2",
        "xz",
        "7z",
        "rar",
        "tar",
        "dmg",
        "exe",
        "msi",
        "pkg",
        "deb",
        "rpm",
        "apk",
        "iso",
        "csv",
        "xls",
        "xlsx",
        "doc",
        "docx",
        "ppt",
        "pptx",
        "odt",
        "ods",
        "odp",
        "rtf",
        "epub",
    ]
)
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_DUP_WINDOW_MS = 600_000  # identical lines further apart than this in one file are not tracked


DEFAULT_STATUS_SPEC = "200-299,304"
DEFAULT_STATUSES: tuple[tuple[int, int], ...] = ((200, 299), (304, 304))


@dataclass(frozen=True)
class Filters:
    methods: frozenset[str] | None = frozenset({"GET"})  # None: every method
    statuses: tuple[tuple[int, int], ...] | None = DEFAULT_STATUSES  # None: every status
    skip_static: bool = True
    static_extensions: frozenset[str] = STATIC_EXTENSIONS


def parse_statuses(spec: str) -> tuple[tuple[int, int], ...] | None:
    """'200-399,404' -> ((200, 399), (404, 404)); 'all' -> None."""
    if spec.strip().lower() == "all":
        return None
    out = []
    for part in spec.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ValueError(
                f"--status: {part.strip()!r} is not a status or a range like 200-399"
            ) from None
        if not 100 <= a <= b <= 599:
            raise ValueError(f"--status: {part.strip()!r} is outside 100-599")
        out.append((a, b))
    return tuple(out)


def parse_methods(spec: str) -> frozenset[str] | None:
    if spec.strip().lower() == "all":
        return None
    methods = frozenset(m.strip().upper() for m in spec.split(",") if m.strip())
    if not methods or not all(m.isalpha() and len(m) <= 16 for m in methods):
        raise ValueError(f"--methods: {spec!r} is not a comma list of HTTP methods (or 'all')")
    return methods


_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,62}[a-z0-9_])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9a-f:.]+\]")


def parse_hostname(spec: str) -> tuple[str, str]:
    """``--hostname``: 'shop.example' or the site's URL 'https://shop.example/' ->
    (scheme, host[:port]); the scheme is http unless the URL says https."""
    value = spec.strip().lower()
    scheme = "http"
    if "://" in value:
        scheme, _, value = value.partition("://")
        if scheme not in ("http", "https"):
            raise ValueError(f"--hostname: {spec[:80]!r} is not a host name or an http(s) URL")
    value = value.rstrip("/")
    host, port = value, ""
    if value.rfind(":") > value.rfind("]"):  # a port (not a colon of [IPv6])
        host, _, port = value.rpartition(":")
        port = port or "-"
    if not _HOST.fullmatch(host) or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ValueError(
            f"--hostname: {spec[:80]!r} is not a host name (shop.example, shop.example:8080) "
            "or a site URL (https://shop.example)"
        )
    return scheme, value


def visitor_id(ip: str, user_agent: str) -> str:
    return hashlib.blake2b(f"{ip}\x1f{user_agent}".encode(), digest_size=16).hexdigest()


def _clean(value: str) -> str:
    if value.isprintable():
        return value
    return "".join(ch for ch in value if ch.isprintable() or ch == " ")


def _extension(path: str) -> str:
    last = path.rsplit("/", 1)[-1]
    dot = last.rfind(".")
    return last[dot + 1 :].lower() if dot > 0 else ""


_NO_UTM = dict.fromkeys(UTM, "")


def _utm(target: str) -> dict[str, str]:
    utm = dict(_NO_UTM)
    for pair in target.partition("?")[2].split("&"):
        key, _, value = pair.partition("=")
        if key in utm and not utm[key]:
            utm[key] = _clean(unquote_plus(value))[:MAX_TEXT]
    return utm


class Converter:
    """Filters and converts the lines of one import; keeps the per-file duplicate counter."""

    def __init__(
        self,
        site: str,
        filters: Filters | None = None,
        host: str = "",
        ip_truncate: bool = True,
        scheme: str = "http",
        received: int | None = None,
        trust_proxy: bool = False,
    ):
        self.site = site
        self.trust_proxy = trust_proxy
        self.received = int(time.time() * 1000) if received is None else received
        self.filters = filters or Filters()
        self.host = host
        self.ip_truncate = ip_truncate
        self.scheme = scheme
        statuses = self.filters.statuses
        self._statuses = (
            None
            if statuses is None
            else frozenset(code for lo, hi in statuses for code in range(lo, hi + 1))
        )
        self._seen: dict[int, tuple[int, int]] = {}  # hash(line) -> (occurrences, ts)
        self._max_ts = 0
        self._in_second: dict[tuple[str, str, int], int] = {}  # (ip, ua, ts) -> lines

    def new_file(self) -> None:
        """Occurrence numbers count identical lines within one file."""
        self._seen.clear()
        self._max_ts = 0
        self._in_second.clear()

    def check(self, line: LogLine) -> None:
        """Raise LineError(reason) when the filters skip this line (every parsed line
        comes here first: its place within its second is counted whatever the filters)."""
        line.nth = self.in_second(line)
        f = self.filters
        if f.methods is not None and line.method not in f.methods:
            raise LineError("method")
        if self._statuses is not None and line.status not in self._statuses:
            raise LineError("status")
        target = line.target
        if not (target.startswith("/") or target.startswith(("http://", "https://"))):
            raise LineError("bad_target")
        if f.skip_static:
            path = target.split("?", 1)[0]
            if _extension(path) in f.static_extensions:
                raise LineError("static")

    def hit_id(self, text: str, ts: int) -> str:
        key = hash(text)  # only counts identical lines within this run; the id below is BLAKE2b
        count, _ = self._seen.get(key, (0, ts))
        self._seen[key] = (count + 1, ts)
        if ts > self._max_ts:
            self._max_ts = ts
        if len(self._seen) > 200_000:
            horizon = self._max_ts - _DUP_WINDOW_MS
            self._seen = {k: v for k, v in self._seen.items() if v[1] >= horizon}
            self._in_second = {k: n for k, n in self._in_second.items() if k[2] >= horizon}
        data = f"{self.site}\x1f{text}" if not count else f"{self.site}\x1f{text}\x1f{count}"
        return hashlib.blake2b(data.encode(), digest_size=16).hexdigest()

    def in_second(self, line: LogLine) -> int:
        """The line's place (from 0) among the lines of this file from the same client
        (IP and User-Agent as logged) at the same logged time, whatever the filters say
        of them: the hit's ts gets that many ms (at most 999).  A log's clock has 1 s
        steps, and the sessionizer orders equal times by hit_id (a hash), so a page and
        the next one in the same second would come out in a random order; with k ms they
        keep the file's (the request was within that second)."""
        key = (line.ip, line.user_agent, line.ts)
        k = self._in_second.get(key, 0)
        self._in_second[key] = k + 1
        return min(k, 999)

    def convert(self, text: str, line: LogLine) -> Hit:
        """The hit of a line that passed :meth:`check`; raises LineError('url_too_long')."""
        target = _clean(line.target)
        if target.startswith("//"):  # a path (servers merge the slashes), not //host/ of a URL
            target = "/" + target.lstrip("/")
        host = self.host or line.host
        url = target if target.startswith("http") or not host else f"{self.scheme}://{host}{target}"
        if len(url) > MAX_URL:
            raise LineError("url_too_long")
        ua = _clean(line.user_agent)
        utm = _utm(target) if "utm_" in target else _NO_UTM
        ip = line.ip
        if line.forwarded and (self.trust_proxy or not ip):
            first = line.forwarded.split(",", 1)[0].strip()
            if truncate_ip(first):  # an IP address, not "unknown" or "-"
                ip = first
        ip = canonical_ip(ip)
        download = _extension(target.split("?", 1)[0]) in DOWNLOAD_EXTENSIONS
        vid = visitor_id(ip, line.user_agent)
        return Hit(
            site=self.site,
            visitor_id=vid,
            hit_id=self.hit_id(text, line.ts),
            ts=line.ts + line.nth,
            received=self.received,
            url=url,
            referrer=_clean(line.referrer)[:MAX_URL],
            ip=truncate_ip(ip) if self.ip_truncate else ip[:64],
            user_agent=ua[:MAX_UA],
            source="log",
            event="download" if download else "pageview",
            utm_source=utm["utm_source"],
            utm_medium=utm["utm_medium"],
            utm_campaign=utm["utm_campaign"],
            utm_term=utm["utm_term"],
            utm_content=utm["utm_content"],
        )
