"""Report parameters: parse and validate what a user asked for, before any SQL exists.

``ReportQuery.parse(name, params)`` is the only way a web request or a CLI call becomes a
query.  Every parameter has a hard limit; anything else raises :class:`QueryError` whose
message says what is accepted.  Values are kept as plain data: the SQL builders bind
them as server-side parameters, never paste them into SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

REPORT_NAMES = ("overview", "funnel", "returning", "paths", "searches", "backloops", "customers")

MAX_RANGE_DAYS = 366
LAST_DATE = date(2149, 6, 6)  # ClickHouse's Date ends here; later values are clamped to it
DEFAULT_RANGE_DAYS = 30
MAX_ID = 128
MAX_PAGE = 2000
MAX_STEPS = 10
MAX_STEP_LEN = 200
MAX_WINDOW_S = 90 * 86400
MAX_LIMIT = 100_000
MAX_VALUE = 2000

# breakdown / filter name -> column (the same column name in hits and sessions)
DIMENSIONS = {
    "channel": "channel",
    "device": "device_type",
    "country": "country",
    "campaign": "utm_campaign",
    "browser": "browser",
    "os": "os",
}
CRM_FILTERS = ("any", "linked", "anonymous")
FORMATS = ("json", "csv")

COMMON = ("site", "from", "to", "channel", "device", "country", "crm", "limit", "format", "table")
PER_REPORT: dict[str, tuple[str, ...]] = {
    "overview": ("interval",),
    "funnel": ("step", "window", "by", "mode", "breakdown"),
    "returning": ("weeks",),
    "paths": ("depth", "page"),
    "searches": (),
    "backloops": (),
    "customers": ("crm_id",),
}
MULTI = frozenset({"step"})

_WINDOW = re.compile(r"^([0-9]{1,7})([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_EVENT = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class QueryError(ValueError):
    """A report parameter that cannot be used; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class Step:
    """One funnel step: a path glob (``/product/*``) or an event (``event:signup``)."""

    text: str
    kind: str  # "path" | "event"
    value: str  # LIKE pattern for paths, event name for events

    @property
    def label(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class ReportQuery:
    name: str
    site: str
    date_from: date
    date_to: date
    filters: dict[str, str] = field(default_factory=dict)  # dimension column -> value
    crm: str = "any"
    limit: int = 10
    format: str = "json"
    table: str = ""
    # funnel
    steps: tuple[Step, ...] = ()
    window_s: int = 86400
    by: str = "visitor"
    mode: str = "default"
    breakdown: str = ""  # column name from DIMENSIONS, or ""
    # paths
    depth: int = 3
    page: str = ""
    # returning
    weeks: int = 8
    # customers
    crm_id: str = ""
    # overview
    interval: str = "day"
    # the site's `time_zone` setting (set by the caller from the settings): report days
    time_zone: str = "UTC"

    @classmethod
    def parse(
        cls, name: str, params: Mapping[str, Sequence[str]], today: date | None = None
    ) -> ReportQuery:
        if name not in REPORT_NAMES:
            raise QueryError(f"unknown report {name!r}; reports: {', '.join(REPORT_NAMES)}")
        allowed = COMMON + PER_REPORT[name]
        one: dict[str, str] = {}
        for key, values in params.items():
            if key not in allowed:
                raise QueryError(
                    f"unknown parameter {_show(key)} for report {name}; accepted: {', '.join(allowed)}"
                )
            values = list(values)
            if key not in MULTI and len(values) > 1:
                raise QueryError(f"parameter {key} given {len(values)} times; give it once")
            for v in values:
                if len(v) > MAX_VALUE:
                    raise QueryError(f"parameter {key} is longer than {MAX_VALUE} characters")
            if key not in MULTI and values:
                one[key] = values[0]
        today = today or datetime.now(UTC).date()
        date_from, date_to = _dates(one.get("from", ""), one.get("to", ""), today)
        kw: dict[str, object] = {
            "name": name,
            "site": _ident("site", one.get("site", ""), required=True),
            "date_from": date_from,
            "date_to": date_to,
            "filters": {
                DIMENSIONS[k]: _text(k, one[k], MAX_ID)
                for k in ("channel", "device", "country")
                if one.get(k)
            },
            "crm": _choice("crm", one.get("crm", "any") or "any", CRM_FILTERS),
            "limit": _int("limit", one.get("limit", ""), 10, 1, MAX_LIMIT),
            "format": _choice("format", one.get("format", "json") or "json", FORMATS),
            "table": _table(one.get("table", "")),
        }
        if name == "funnel":
            kw["steps"] = tuple(parse_step(s) for s in _steps(params.get("step", [])))
            kw["window_s"] = parse_window(one.get("window", "") or "1d")
            kw["by"] = _choice("by", one.get("by", "visitor") or "visitor", ("visitor", "session"))
            kw["mode"] = _choice(
                "mode", one.get("mode", "default") or "default", ("default", "strict")
            )
            if one.get("breakdown"):
                kw["breakdown"] = DIMENSIONS[
                    _choice("breakdown", one["breakdown"], tuple(DIMENSIONS))
                ]
        elif name == "paths":
            kw["depth"] = _int("depth", one.get("depth", ""), 3, 1, 10)
            kw["page"] = _text("page", one.get("page", ""), MAX_PAGE)
        elif name == "returning":
            kw["weeks"] = _int("weeks", one.get("weeks", ""), 8, 1, 26)
        elif name == "customers":
            kw["crm_id"] = _ident("crm_id", one.get("crm_id", ""))
        elif name == "overview":
            kw["interval"] = _choice(
                "interval", one.get("interval", "day") or "day", ("day", "hour")
            )
        return cls(**kw)  # type: ignore[arg-type]

    def params(self) -> dict[str, object]:
        """The bound parameters every report shares (names match :mod:`reports.sql`)."""
        out: dict[str, object] = {"site": self.site, "d_from": self.date_from, "d_to": self.date_to}
        if self.time_zone != "UTC":
            out["tz"] = self.time_zone
        for col, value in self.filters.items():
            out[f"f_{col}"] = value
        return out


def in_site_zone(query: ReportQuery, settings: Any) -> ReportQuery:
    """``query`` counting days in its site's ``time_zone`` setting (UTC without settings)."""
    zone = _site_zone(settings, query.site)
    return query if zone == query.time_zone else replace(query, time_zone=zone)


def parse_for_site(
    name: str, params: Mapping[str, Sequence[str]], settings: Any, now: datetime | None = None
) -> ReportQuery:
    """``ReportQuery.parse`` in the site's time zone: the default ``to`` is today there (at
    01:00 UTC it is still yesterday in New York), and the days are counted there."""
    site = next(iter(params.get("site", [])), "").strip()
    zone = _site_zone(settings, site) if site else "UTC"
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(zone)).date()
    return in_site_zone(ReportQuery.parse(name, params, today=today), settings)


def _site_zone(settings: Any, site: str) -> str:
    for_site = getattr(settings, "for_site", None)
    return str(for_site(site).time_zone) if for_site is not None else "UTC"


def parse_step(text: str) -> Step:
    text = text.strip()
    if not text:
        raise QueryError("empty funnel step; give a path glob such as /cart* or event:NAME")
    if len(text) > MAX_STEP_LEN:
        raise QueryError(f"funnel step longer than {MAX_STEP_LEN} characters")
    if _CONTROL.search(text):
        raise QueryError("funnel step contains control characters")
    if text.startswith("event:"):
        event = text[len("event:") :]
        if not _EVENT.match(event):
            raise QueryError(
                f"bad event name in step {_show(text)}: use letters, digits and _.:- (max 64)"
            )
        return Step(text, "event", event)
    if not text.startswith("/"):
        raise QueryError(
            f"funnel step {_show(text)} must be a path glob starting with / or event:NAME"
        )
    return Step(text, "path", glob_to_like(text))


def glob_to_like(glob: str) -> str:
    """``*`` matches any run of characters; everything else is literal."""
    out = []
    for ch in glob:
        if ch in "\\%_":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        else:
            out.append(ch)
    return "".join(out)


def parse_window(text: str) -> int:
    m = _WINDOW.match(text.strip())
    if not m:
        raise QueryError(f"bad window {_show(text)}: use a number with s, m, h or d (e.g. 30m, 1d)")
    seconds = int(m.group(1)) * _UNIT_S[m.group(2)]
    if not 1 <= seconds <= MAX_WINDOW_S:
        raise QueryError(f"window must be between 1s and {MAX_WINDOW_S // 86400}d")
    return seconds


def _steps(values: Sequence[str]) -> list[str]:
    if not values:
        raise QueryError("a funnel needs step= (repeat it: step=/ step=/cart step=event:purchase)")
    if len(values) > MAX_STEPS:
        raise QueryError(f"a funnel takes at most {MAX_STEPS} steps, got {len(values)}")
    return list(values)


def _dates(raw_from: str, raw_to: str, today: date) -> tuple[date, date]:
    date_to = _date("to", raw_to) if raw_to else today
    date_from = (
        _date("from", raw_from) if raw_from else date_to - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    )
    if date_from > date_to:
        raise QueryError(f"from ({date_from}) is after to ({date_to})")
    if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
        raise QueryError(f"date range longer than {MAX_RANGE_DAYS} days; narrow from/to")
    return date_from, date_to


def _date(key: str, text: str) -> date:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise QueryError(f"{key} must be a date YYYY-MM-DD, got {_show(text)}")
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{key} is not a calendar date: {_show(text)}") from None
    if value.year < 2000:
        raise QueryError(f"{key} is before 2000-01-01")
    if value > LAST_DATE:
        raise QueryError(f"{key} is after {LAST_DATE} (the last day of a ClickHouse Date)")
    return value


def _ident(key: str, text: str, required: bool = False) -> str:
    text = text.strip()
    if not text:
        if required:
            raise QueryError(f"{key} is required (e.g. {key}=example.com)")
        return ""
    return _text(key, text, MAX_ID)


def _text(key: str, text: str, max_len: int) -> str:
    if len(text) > max_len:
        raise QueryError(f"{key} is longer than {max_len} characters")
    if _CONTROL.search(text):
        raise QueryError(f"{key} contains control characters")
    return text


def _choice(key: str, text: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        raise QueryError(f"bad {key} {_show(text)}; accepted: {', '.join(choices)}")
    return text


def _int(key: str, text: str, default: int, lo: int, hi: int) -> int:
    if text == "":
        return default
    if not re.fullmatch(r"[0-9]{1,9}", text.strip()):
        raise QueryError(f"{key} must be a whole number from {lo} to {hi}, got {_show(text)}")
    value = int(text)
    if not lo <= value <= hi:
        raise QueryError(f"{key} must be from {lo} to {hi}, got {value}")
    return value


def _table(text: str) -> str:
    if text and not re.fullmatch(r"[a-z_]{1,32}", text):
        raise QueryError(f"bad table {_show(text)}: a table name of the report, such as steps")
    return text


def _show(text: str) -> str:
    """A user value quoted for an error message, cut short and without control characters."""
    cut = _CONTROL.sub("?", text[:60])
    return repr(cut + ("…" if len(text) > 60 else ""))
