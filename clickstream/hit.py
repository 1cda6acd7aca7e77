"""The Hit record, version 1: the one thing that crosses Kafka.

The collector (and `import-log`) builds a Hit with :func:`Hit` and sends
``hit.to_json()``; the sessionizer reads it back with :meth:`Hit.from_json` and
nothing else.  Validation of raw request parameters lives in ``collector/``;
this module only guarantees the record's own shape (types, limits, version).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

VERSION = 1

# Hard limits every Hit obeys, whatever produced it (collector, log import, demo).
MAX_URL = 2000
MAX_TEXT = 1000  # title, search query, referrer beyond MAX_URL is cut to MAX_URL
MAX_ID = 128  # site, visitor_id, crm_id, event name, hit_id
MAX_PROPS = 30
MAX_PROP_KEY = 64
MAX_PROP_VALUE = 500
MAX_UA = 512

EVENTS_THAT_ARE_PAGES = frozenset({"pageview", "search"})
NAV_TYPES = frozenset({"", "navigate", "reload", "back_forward"})
SOURCES = frozenset({"pixel", "beacon", "redirect", "log", "demo", "server"})


class HitDecodeError(ValueError):
    """A Kafka record that is not a valid Hit v1 (poison record)."""


@dataclass(slots=True)
class Hit:
    site: str
    visitor_id: str
    hit_id: str
    ts: int  # derived event time, epoch milliseconds UTC
    received: int  # collector's clock, epoch milliseconds UTC
    event: str = "pageview"
    url: str = ""
    referrer: str = ""
    title: str = ""
    search_query: str = ""
    search_results: int | None = None
    crm_id: str = ""
    nav: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    utm_term: str = ""
    utm_content: str = ""
    props: dict[str, str] = field(default_factory=dict)
    ip: str = ""  # already truncated by the collector when the site asks for it
    user_agent: str = ""
    source: str = "pixel"
    v: int = VERSION

    @property
    def key(self) -> bytes:
        """Kafka key: one visitor always lands on one partition."""
        return f"{self.site}|{self.visitor_id}".encode()

    @property
    def is_page(self) -> bool:
        return self.event in EVENTS_THAT_ARE_PAGES

    def to_json(self) -> bytes:
        return orjson.dumps(self)  # orjson serializes (slots) dataclasses natively

    @classmethod
    def from_json(cls, raw: bytes | str) -> Hit:
        """Decode and check one record; raises HitDecodeError with the reason."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise HitDecodeError(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise HitDecodeError("not an object")
        if data.get("v") != VERSION:
            raise HitDecodeError(f"unsupported version {data.get('v')!r}")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hit:
        unknown = set(data) - _FIELDS
        if unknown:
            raise HitDecodeError(f"unknown fields {sorted(unknown)}")
        try:
            hit = cls(**data)
        except TypeError as exc:
            raise HitDecodeError(str(exc)) from None
        hit.check()
        return hit

    def check(self) -> None:
        """Raise HitDecodeError if any field breaks the record's types or limits."""
        for name in _STR_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, str):
                raise HitDecodeError(f"{name} must be a string")
            if len(value) > _LIMITS.get(name, MAX_TEXT):
                raise HitDecodeError(f"{name} too long")
        for name in ("site", "visitor_id", "hit_id"):
            if not getattr(self, name):
                raise HitDecodeError(f"{name} is empty")
        for name in ("ts", "received"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value < 2**53:
                raise HitDecodeError(f"{name} must be epoch milliseconds")
        if self.search_results is not None and (
            type(self.search_results) is not int or not 0 <= self.search_results < 2**31
        ):
            raise HitDecodeError("search_results must be a non-negative int")
        if self.nav not in NAV_TYPES:
            raise HitDecodeError("bad nav")
        if self.source not in SOURCES:
            raise HitDecodeError("bad source")
        if not isinstance(self.props, dict) or len(self.props) > MAX_PROPS:
            raise HitDecodeError("props must be an object of at most 30 entries")
        for k, val in self.props.items():
            if not isinstance(val, str) or len(k) > MAX_PROP_KEY or len(val) > MAX_PROP_VALUE:
                raise HitDecodeError("bad prop")


_FIELDS = frozenset(Hit.__dataclass_fields__)
_STR_FIELDS = tuple(name for name, f in Hit.__dataclass_fields__.items() if f.type in ("str", str))
_LIMITS = {
    "site": MAX_ID,
    "visitor_id": MAX_ID,
    "hit_id": MAX_ID,
    "crm_id": MAX_ID,
    "event": MAX_ID,
    "url": MAX_URL,
    "referrer": MAX_URL,
    "user_agent": MAX_UA,
    "ip": 64,
}
