"""Validate a hit as the browser sent it against the collector's parameter contract.

DESIGN.md, GET /p.gif and POST /collect: short names s u r e t q n uid vid cts sts nav,
``utm_*`` and ``x_*``; limits from ``clickstream.hit``; then the collector's own
``collector.validate.build_hit`` must accept it (no Drop).
"""

from __future__ import annotations

import re
import time

from clickstream.hit import MAX_ID, MAX_PROP_KEY, MAX_PROP_VALUE, MAX_PROPS, MAX_TEXT, MAX_URL
from clickstream.settings import load
from collector.validate import Request, build_hit, normalize

SETTINGS = load(env={})

SHORT = {"s", "u", "r", "e", "t", "q", "n", "uid", "vid", "cts", "sts", "nav"}
UTM = {"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"}
VOLATILE = ("vid", "cts", "sts")
THIRTY_DAYS_MS = 30 * 86400 * 1000


def check(params: dict[str, object]) -> None:
    """Raise AssertionError naming the first field that breaks the contract."""
    for key, value in params.items():
        assert key in SHORT or key in UTM or key.startswith("x_"), f"unknown param {key!r}"
        if key in ("n", "cts", "sts"):
            assert re.fullmatch(r"\d{1,16}", str(value)), f"{key}={value!r} is not an integer"
        else:
            assert isinstance(value, str) and value, f"{key}={value!r} is not a non-empty string"
    assert params.get("s"), "s (site) missing"
    for key in ("s", "e", "uid"):
        assert len(str(params.get(key, ""))) <= MAX_ID, f"{key} too long"
    for key in ("u", "r"):
        value = str(params.get(key, ""))
        assert len(value) <= MAX_URL, f"{key} too long"
        assert not value or value.startswith(("http://", "https://")), f"{key}={value!r}"
    for key in ("t", "q"):
        assert len(str(params.get(key, ""))) <= MAX_TEXT, f"{key} too long"
    assert params.get("nav", "navigate") in ("navigate", "reload", "back_forward")
    assert re.fullmatch(r"[0-9a-f]{32}", str(params.get("vid", ""))), "vid is not 128-bit hex"
    cts, sts = int(str(params["cts"])), int(str(params["sts"]))
    assert 0 <= sts - cts <= THIRTY_DAYS_MS, f"sts - cts = {sts - cts}"
    props = [k for k in params if k.startswith("x_")]
    assert len(props) <= MAX_PROPS, "too many props"
    for key in props:
        assert len(key) - 2 <= MAX_PROP_KEY and len(str(params[key])) <= MAX_PROP_VALUE
    hit = build_hit(normalize(params), Request(received=int(time.time() * 1000)), SETTINGS)
    assert (hit.site, hit.url, hit.visitor_id) == (params["s"], params["u"], params["vid"])
    assert hit.event == params.get("e", "pageview")


def stable(params: dict[str, object]) -> dict[str, object]:
    """The hit after :func:`check`, without the values that change on every run."""
    check(params)
    return {k: v for k, v in params.items() if k not in VOLATILE}
