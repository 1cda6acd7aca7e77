"""Access-log formats compiled to one anchored regex each.

A format is given by name (``combined``, ``common``, ``vhost_combined``) or as the
web server's own format string:

- Apache ``LogFormat``: ``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"``
- nginx ``log_format``: ``$remote_addr - $remote_user [$time_local] "$request" ...``

:func:`compile_format` turns it into a :class:`LogFormat` whose :meth:`LogFormat.parse`
maps one line to a :class:`LogLine` or raises :class:`LineError` with a short reason
(counted by the importer).  Only the fields a hit needs are captured; every other
directive is matched and ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

PRESETS = {
    "combined": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"',
    "common": '%h %l %u %t "%r" %>s %b',
    "vhost_combined": '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
}
MAX_FORMAT = 2000


class FormatError(ValueError):
    """A format string that cannot be compiled; the message says which part."""


class LineError(ValueError):
    """A line that does not parse; ``args[0]`` is the reason counted in the summary."""


@dataclass(slots=True)
class LogLine:
    ip: str
    ts: int  # epoch milliseconds UTC
    method: str
    target: str  # path + query as requested
    protocol: str
    status: int
    referrer: str
    user_agent: str
    host: str
    forwarded: str = ""  # X-Forwarded-For as logged, when the format has it
    nth: int = 0  # place among the client's lines at the same logged time (Converter.check)


# --- time --------------------------------------------------------------------------

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_MIN_YEAR, _MAX_YEAR = 1990, 2200


@lru_cache(maxsize=4096)
def _day_epoch(day: str) -> int:
    """'10/Oct/2000' -> epoch seconds of that day's 00:00 UTC."""
    d, mon, y = int(day[0:2]), _MONTHS[day[3:6]], int(day[7:11])
    if not _MIN_YEAR <= y <= _MAX_YEAR:
        raise ValueError(day)
    return int(datetime(y, mon, d, tzinfo=UTC).timestamp())


@lru_cache(maxsize=8192)
def parse_clf_time(s: str) -> int:
    """'10/Oct/2000:13:55:36 -0700' -> epoch ms (the regex has checked the shape)."""
    try:
        h, m, sec = int(s[12:14]), int(s[15:17]), int(s[18:20])
        if h > 23 or m > 59 or sec > 60:
            raise ValueError(s)
        if int(s[22:24]) > 14 or int(s[24:26]) > 59:  # UTC offsets run from -12:00 to +14:00
            raise ValueError(s)
        off = int(s[22:24]) * 3600 + int(s[24:26]) * 60
        if s[21] == "-":
            off = -off
        return (_day_epoch(s[:11]) + h * 3600 + m * 60 + sec - off) * 1000
    except (KeyError, ValueError):
        raise LineError("bad_time") from None


def parse_iso_time(s: str) -> int:
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        raise LineError("bad_time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    if not _MIN_YEAR <= t.year <= _MAX_YEAR:
        raise LineError("bad_time")
    return int(t.timestamp() * 1000)


def parse_epoch_time(s: str) -> int:
    try:
        ms = int(float(s) * 1000)
    except ValueError:
        raise LineError("bad_time") from None
    if not 631152000000 <= ms < 7258118400000:  # 1990 .. 2200
        raise LineError("bad_time")
    return ms


# --- the pieces a format is made of ---------------------------------------------------

# A field kind -> (pattern outside quotes, time parser or None)
_CLF_TIME = r"\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}"
_QUOTED = r'[^"\\]*(?:\\.[^"\\]*)*'
_TOKEN = r"\S*"

# Apache directive letter (with optional {arg}) -> field kind
_APACHE: dict[str, str] = {
    "h": "ip",
    "a": "ip",
    "t": "time_clf_brackets",
    "r": "request",
    "s": "status",
    "m": "method",
    "U": "path",
    "q": "query_apache",
    "H": "protocol",
    "v": "host",
    "V": "host",
}
_APACHE_HEADERS = {
    "referer": "referrer",
    "user-agent": "user_agent",
    "host": "host",
    "x-forwarded-for": "forwarded",
}

# nginx variable -> field kind
_NGINX: dict[str, str] = {
    "remote_addr": "ip",
    "time_local": "time_clf",
    "time_iso8601": "time_iso",
    "msec": "time_epoch",
    "request": "request",
    "status": "status",
    "http_referer": "referrer",
    "http_user_agent": "user_agent",
    "http_x_forwarded_for": "forwarded",
    "host": "host",
    "http_host": "host",
    "server_name": "host",
    "request_method": "method",
    "request_uri": "target",
    "uri": "path",
    "args": "query_nginx",
    "query_string": "query_nginx",
    "server_protocol": "protocol",
}

_OUTSIDE: dict[str, str] = {
    "ip": r"[^\s\"]+",
    "time_clf": _CLF_TIME,
    "time_iso": r"\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:?\d{2})?",
    "time_epoch": r"\d+(?:\.\d+)?",
    "status": r"\d{3}",
}
_TIME_KINDS: dict[str, Callable[[str], int]] = {
    "time_clf_brackets": parse_clf_time,
    "time_clf": parse_clf_time,
    "time_iso": parse_iso_time,
    "time_epoch": parse_epoch_time,
}

_APACHE_DIRECTIVE = re.compile(r"%(?:!?\d{3}(?:,\d{3})*)?([<>])?(?:\{([^}]*)\})?([a-zA-Z%])")
_NGINX_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))")


@dataclass(frozen=True)
class LogFormat:
    name: str
    source: str
    regex: re.Pattern[str]
    kinds: tuple[str, ...]  # kind of each capture group, in order
    build: Callable[[tuple[str, ...]], LogLine]

    def parse(self, line: str) -> LogLine:
        m = self.regex.match(line)
        if m is None:
            raise LineError("malformed")
        return self.build(m.groups())


def _unquote(value: str) -> str:
    if "\\" in value:
        value = value.replace('\\"', '"').replace("\\\\", "\\")
    return "" if value == "-" else value


def _builder(kinds: tuple[str, ...]) -> Callable[[tuple[str, ...]], LogLine]:
    """A function from the regex groups to a LogLine, with every position resolved once."""
    at: dict[str, int] = {}
    for i, kind in enumerate(kinds):
        at.setdefault(kind, i)
    time_kind = next(k for k in _TIME_KINDS if k in at)
    parse_time, i_time = _TIME_KINDS[time_kind], at[time_kind]
    i_req, i_status = at.get("request"), at.get("status")
    i_ip, i_ref, i_ua, i_host = (
        at.get("ip"),
        at.get("referrer"),
        at.get("user_agent"),
        at.get("host"),
    )
    i_method, i_proto, i_target, i_path = (
        at.get("method"),
        at.get("protocol"),
        at.get("target"),
        at.get("path"),
    )
    i_qa, i_qn = at.get("query_apache"), at.get("query_nginx")
    i_fwd = at.get("forwarded")

    def split_request(g: tuple[str, ...]) -> tuple[str, str, str]:
        if i_req is not None:
            parts = g[i_req].split(" ")
            if len(parts) != 3 or not parts[0] or not parts[1]:
                raise LineError("bad_request")
            return parts[0], parts[1], parts[2]
        method = g[i_method] if i_method is not None else ""
        protocol = g[i_proto] if i_proto is not None else ""
        target = g[i_target] if i_target is not None else ""
        if not target and i_path is not None:
            query = g[i_qa] if i_qa is not None else ""
            if i_qn is not None and g[i_qn] not in ("", "-"):
                query = "?" + g[i_qn]
            target = g[i_path] + query
        if not method or not target:
            raise LineError("bad_request")
        return method, target, protocol

    def build(g: tuple[str, ...]) -> LogLine:
        method, target, protocol = split_request(g)
        host = g[i_host] if i_host is not None else ""
        return LogLine(
            ip=g[i_ip] if i_ip is not None else "",
            ts=parse_time(g[i_time]),
            method=method,
            target=_unquote(target),
            protocol=protocol,
            status=int(g[i_status]) if i_status is not None else 200,
            referrer=_unquote(g[i_ref]) if i_ref is not None else "",
            user_agent=_unquote(g[i_ua]) if i_ua is not None else "",
            host="" if host == "-" else host,
            forwarded=_unquote(g[i_fwd]) if i_fwd is not None else "",
        )

    return build


def _quoted_context(fmt: str, start: int, end: int) -> bool:
    return start > 0 and fmt[start - 1] == '"' and end < len(fmt) and fmt[end] == '"'


def _field_pattern(kind: str, quoted: bool) -> str:
    if kind == "ignore":
        return _QUOTED if quoted else _TOKEN
    if quoted and not kind.startswith("time"):
        return "(" + _QUOTED + ")"
    if kind in ("request", "referrer", "user_agent"):
        raise FormatError(f"{kind} must be enclosed in double quotes in the format")
    if kind == "time_clf_brackets":  # Apache's %t writes its own brackets
        return r"\[(" + _CLF_TIME + r")\]"
    return "(" + _OUTSIDE.get(kind, _TOKEN) + ")"


def _apache_kind(directive: re.Match[str]) -> str:
    _, arg, letter = directive.groups()
    if letter == "i" and arg is not None:
        return _APACHE_HEADERS.get(arg.lower(), "ignore")
    if letter == "t" and arg is not None:
        if arg in ("sec", "%s"):
            return "time_epoch"
        if arg == "msec":
            raise FormatError("%{msec}t is not supported; use %t or %{sec}t")
        raise FormatError(f"custom time format %{{{arg}}}t is not supported; use %t")
    if letter == "a" and arg is not None:
        return "ip"
    return _APACHE.get(letter, "ignore")


def _compile(
    fmt: str, tokens: re.Pattern[str], kind_of: Callable[[re.Match[str]], str]
) -> tuple[str, list[str]]:
    out: list[str] = []
    kinds: list[str] = []
    pos = 0
    for tok in tokens.finditer(fmt):
        out.append(re.escape(fmt[pos : tok.start()]))
        pos = tok.end()
        if tok.group(0) == "%%":
            out.append("%")
            continue
        kind = kind_of(tok)
        out.append(_field_pattern(kind, _quoted_context(fmt, tok.start(), tok.end())))
        if kind != "ignore":
            kinds.append(kind)
    out.append(re.escape(fmt[pos:]))
    return "".join(out), kinds


def _nginx_kind(tok: re.Match[str]) -> str:
    return _NGINX.get(tok.group(1) or tok.group(2), "ignore")


def compile_format(spec: str) -> LogFormat:
    """A preset name or an Apache/nginx format string -> :class:`LogFormat`."""
    if not spec or len(spec) > MAX_FORMAT:
        raise FormatError(
            f"format must be a preset ({', '.join(PRESETS)}) or a LogFormat string of at most {MAX_FORMAT} characters"
        )
    name = spec if spec in PRESETS else "custom"
    source = PRESETS.get(spec, spec)
    if _APACHE_DIRECTIVE.search(source):
        body, kinds = _compile(source, _APACHE_DIRECTIVE, _apache_kind)
    elif _NGINX_VARIABLE.search(source):
        body, kinds = _compile(source, _NGINX_VARIABLE, _nginx_kind)
    else:
        raise FormatError(
            f"format {spec[:80]!r} is not a preset ({', '.join(PRESETS)}) and has no %directives or $variables"
        )
    if not any(k.startswith("time") for k in kinds):
        raise FormatError("format has no request time (%t, $time_local, $time_iso8601 or $msec)")
    if "request" not in kinds and not (
        {"method"} <= set(kinds) and {"path", "target"} & set(kinds)
    ):
        raise FormatError('format has no request ("%r" / "$request", or method and path)')
    # presets tolerate extra trailing fields (a common local addition); custom formats are exact
    tail = r"(?:[ \t].*)?" if name != "custom" else ""
    try:
        regex = re.compile("^" + body + tail + r"[ \t]*$")
    except re.error as exc:  # pragma: no cover - every piece is escaped or ours
        raise FormatError(f"format does not compile: {exc}") from None
    return LogFormat(name, source, regex, tuple(kinds), _builder(tuple(kinds)))
