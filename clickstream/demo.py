"""`clickstream demo`: realistic synthetic traffic against a running collector.

A small shop: visitors arrive from search engines, social, email campaigns and paid
ads, browse categories and products, search (some searches find nothing), go back
and forth, sign in (CRM id) and buy.  Events are back-dated over the last ``days``
with ``cts``/``sts`` (the collector's derived time), one beacon batch per session.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

CATEGORIES = ["shoes", "shirts", "jackets", "bags", "hats"]
TERMS_FOUND = ["red shoes", "linen shirt", "rain jacket", "tote bag", "wool hat", "sneakers"]
TERMS_EMPTY = ["purple unicorn boots", "xl kilt", "gift card", "shoe horn"]
UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
ARRIVALS: list[tuple[str, dict[str, str]]] = [
    ("", {}),
    ("https://www.google.com/", {}),
    ("https://duckduckgo.com/", {}),
    ("https://www.facebook.com/", {}),
    ("https://news.ycombinator.com/", {}),
    ("", {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring"}),
    (
        "https://www.google.com/",
        {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand"},
    ),
    ("https://blog.example.org/review", {}),
]


@dataclass
class Visitor:
    vid: str
    ua: str
    crm: str = ""


def session_events(
    rng: random.Random, site: str, base: str, v: Visitor, start_ms: int
) -> list[dict[str, Any]]:
    t = start_ms
    events: list[dict[str, Any]] = []
    referrer, utm = rng.choice(ARRIVALS)

    def page(path: str, **extra: Any) -> None:
        nonlocal t
        ev: dict[str, Any] = {"s": site, "u": base + path, "e": "pageview", "cts": t, "ua": v.ua}
        if not events:
            ev["r"] = referrer
            ev.update(utm)
            if utm:
                ev["u"] += ("&" if "?" in path else "?") + "&".join(
                    f"{k}={val}" for k, val in utm.items()
                )
        ev.update(extra)
        events.append(ev)
        t += rng.randint(4_000, 90_000)

    page("/")
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        cat = rng.choice(CATEGORIES)
        page(f"/c/{cat}")
        if rng.random() < 0.6:
            product = f"/p/{cat}-{rng.randint(1, 12)}"
            page(product)
            if rng.random() < 0.25:  # back-loop: product -> category -> product
                page(f"/c/{cat}", nav="back_forward")
                t -= 60_000 if t - start_ms > 120_000 else 0
                page(product)
    if rng.random() < 0.35:
        if rng.random() < 0.35:
            term = rng.choice(TERMS_EMPTY)
            page(f"/search?q={term.replace(' ', '+')}", e="search", q=term, n=0)
            if rng.random() < 0.5:
                term = rng.choice(TERMS_FOUND)
                page(
                    f"/search?q={term.replace(' ', '+')}", e="search", q=term, n=rng.randint(1, 30)
                )
        else:
            term = rng.choice(TERMS_FOUND)
            page(f"/search?q={term.replace(' ', '+')}", e="search", q=term, n=rng.randint(1, 30))
            if rng.random() < 0.7:
                page(f"/p/{rng.choice(CATEGORIES)}-{rng.randint(1, 12)}")
    if rng.random() < 0.3:
        page("/cart")
        if rng.random() < 0.5:
            if not v.crm and rng.random() < 0.7:
                v.crm = f"cust-{rng.randint(1000, 9999)}"
            page("/checkout", uid=v.crm or "")
            if rng.random() < 0.7:
                page(
                    "/checkout/done",
                    e="purchase",
                    uid=v.crm or "",
                    props={"revenue": f"{rng.randint(15, 300)}.{rng.randint(0, 99):02d}"},
                )
    return events


def generate(
    sessions: int, days: int, site: str, base: str, seed: int
) -> Iterator[list[dict[str, Any]]]:
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    visitors: list[Visitor] = []
    starts = sorted(
        now - rng.randint(0, max(1, days) * 86400_000 - 3600_000) - 3600_000
        for _ in range(sessions)
    )
    for start in starts:  # in time order, as live traffic arrives
        if visitors and rng.random() < 0.35:
            v = rng.choice(visitors)
        else:
            v = Visitor(f"{rng.getrandbits(128):032x}", rng.choice(UAS))
            visitors.append(v)
        events = session_events(rng, site, base, v, start)
        for ev in events:
            ev["vid"] = v.vid  # the visitor id travels as `vid` (no cookie jar here)
        yield events


def run(collector: str, site: str, sessions: int, days: int, seed: int = 1) -> tuple[int, int]:
    """Send the traffic; returns (sessions sent, events sent)."""
    sent_sessions = sent_events = 0
    with httpx.Client(base_url=collector.rstrip("/"), timeout=30) as client:
        for batch in generate(sessions, days, site, "https://shop.example", seed):
            if not batch:
                continue
            now = int(time.time() * 1000)
            for ev in batch:
                ev["sts"] = now
            client.cookies.clear()  # each visitor is its own browser: `vid` decides
            r = client.post("/collect", json=batch, headers={"content-type": "text/plain"})
            if r.status_code != 204:
                raise RuntimeError(f"collector answered {r.status_code}: {r.text[:200]}")
            sent_sessions += 1
            sent_events += len(batch)
    return sent_sessions, sent_events
