"""Row factories for report tests: every column of hits/sessions/identities with defaults."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from clickstream import warehouse

_ids = itertools.count(1)


def at(text: str) -> datetime:
    """'2024-01-10 10:00:00' (or with .mmm) as an aware UTC datetime."""
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def hit(**kw: Any) -> dict[str, Any]:
    ts = at(kw.pop("ts"))
    event = kw.get("event", "pageview")
    path = kw.get("path", "")
    row: dict[str, Any] = {
        "site": "shop",
        "hit_id": f"h{next(_ids)}",
        "ts": ts,
        "received": ts,
        "visitor_id": "v",
        "session_id": "",
        "crm_id": "",
        "event": event,
        "url": "",
        "host": "shop.example",
        "path": path,
        "query_string": "",
        "page": path if event in ("pageview", "search") else "",
        "referrer": "",
        "title": "",
        "search_query": "",
        "search_results": None,
        "is_dead_end_search": 0,
        "search_result_opened": 0,
        "is_pogo_stick": 0,
        "is_back_loop": 0,
        "is_quick_back": 0,
        "uid": "",
        "nav": "",
        "seq": 1,
        "prev_page": "",
        "next_page": "",
        "browser": "Chrome",
        "browser_version": "120",
        "os": "Linux",
        "device_type": "desktop",
        "is_bot": 0,
        "country": "DE",
        "region": "",
        "city": "",
        "channel": "direct",
        "utm_source": "",
        "utm_medium": "",
        "utm_campaign": "",
        "utm_term": "",
        "utm_content": "",
        "props": {},
        "ip": "",
        "source": "pixel",
        "version": 1,
        "is_deleted": 0,
    }
    row.update(kw)
    if not row["session_id"]:
        row["session_id"] = "s-" + row["visitor_id"]
    return row


def session(**kw: Any) -> dict[str, Any]:
    start = at(kw.pop("start"))
    row: dict[str, Any] = {
        "site": "shop",
        "session_id": f"s{next(_ids)}",
        "visitor_id": "v",
        "crm_id": "",
        "start_ts": start,
        "end_ts": start,
        "duration_s": 0,
        "hits": 1,
        "pageviews": 1,
        "events": 0,
        "entry_path": "/",
        "exit_path": "/",
        "paths": ["/"],
        "referrer": "",
        "channel": "direct",
        "utm_source": "",
        "utm_medium": "",
        "utm_campaign": "",
        "utm_term": "",
        "utm_content": "",
        "browser": "Chrome",
        "os": "Linux",
        "device_type": "desktop",
        "country": "DE",
        "is_bot": 0,
        "is_bounce": 1,
        "session_number": 1,
        "is_returning": 0,
        "searches": 0,
        "dead_end_searches": 0,
        "dead_end_terms": [],
        "back_loops": 0,
        "quick_backs": 0,
        "back_loop_paths": [],
        "search_results_opened": 0,
        "pogo_sticks": 0,
        "is_back_looping": 0,
        "back_forward_navs": 0,
        "revenue": 0.0,
        "is_closed": 1,
        "version": 1,
        "is_deleted": 0,
    }
    row.update(kw)
    return row


def identity(visitor_id: str, crm_id: str, first: str, last: str = "", **kw: Any) -> dict[str, Any]:
    row = {
        "site": "shop",
        "visitor_id": visitor_id,
        "crm_id": crm_id,
        "first_ts": at(first),
        "last_ts": at(last or first),
        "version": 1,
        "is_deleted": 0,
    }
    row.update(kw)
    return row


def load(client: Client, database: str, table: str, rows: list[dict[str, Any]]) -> None:
    columns = warehouse.table_columns(client, database, table)
    missing = set(rows[0]) ^ set(columns) if rows else set()
    assert not missing, f"factory and {table} schema differ: {missing}"
    warehouse.insert(
        client, f"{database}.{table}", [[r[c] for c in columns] for r in rows], columns
    )
