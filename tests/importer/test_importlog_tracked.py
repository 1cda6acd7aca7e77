"""The --skip-tracked matching rule: pure index, then against real ClickHouse (chDB)."""

from __future__ import annotations

import datetime as dt

from clickstream import warehouse
from clickstream.hit import Hit
from importer.tracked import DAY_MS, TrackedIndex, clickhouse_loader
from tests.importer.importlog_helpers import run_import

T0 = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC


def log_hit(ts: int, ip: str = "198.51.100.0", url: str = "http://x.org/a?b=1") -> Hit:
    return Hit(
        site="s", visitor_id="v", hit_id=f"h{ts}", ts=ts, received=ts, url=url, ip=ip, source="log"
    )


def test_same_prefix_path_and_time_within_the_window_matches_once():
    pixel = [("198.51.100.77", "/a", T0 + 4000)]
    index = TrackedIndex(lambda a, b: [p for p in pixel if a <= p[2] < b], window_ms=10_000)
    assert index.matches(log_hit(T0))  # 198.51.100.77 and 198.51.100.0 share the /24
    assert not index.matches(log_hit(T0))  # the pixel hit is used up: a reload is still imported


def test_other_path_other_prefix_or_outside_the_window_do_not_match():
    pixel = [("198.51.100.7", "/a", T0)]
    index = TrackedIndex(lambda a, b: [p for p in pixel if a <= p[2] < b], window_ms=10_000)
    assert not index.matches(log_hit(T0, url="/b"))
    assert not index.matches(log_hit(T0, ip="198.51.101.7"))
    assert not index.matches(log_hit(T0 + 10_001))
    assert not index.matches(log_hit(T0 - 10_001))
    assert index.matches(log_hit(T0 - 10_000))


def test_nearest_pixel_hit_is_used_and_days_load_once_each():
    day_end = (T0 // DAY_MS + 1) * DAY_MS
    pixel = [("10.0.0.1", "/a", day_end - 3000), ("10.0.0.1", "/a", day_end + 2000)]
    calls: list[tuple[int, int]] = []

    def load(a: int, b: int):
        calls.append((a, b))
        return [p for p in pixel if a <= p[2] < b]

    index = TrackedIndex(load, window_ms=5000)
    assert index.matches(
        log_hit(day_end + 1000, ip="10.0.0.9", url="/a")
    )  # nearest: the next day's
    assert index.matches(log_hit(day_end + 1000, ip="10.0.0.9", url="/a"))  # then the other one
    assert not index.matches(log_hit(day_end + 1000, ip="10.0.0.9", url="/a"))
    assert calls == [(day_end - DAY_MS, day_end), (day_end, day_end + DAY_MS)]
    assert index.pixel_hits == 2


def test_skip_tracked_against_pixel_hits_in_clickhouse(ch, database, write):
    db = database
    ts = dt.datetime(2023, 10, 10, 20, 55, 38, tzinfo=dt.UTC)  # 2 s after the log line below
    cols = [
        "site",
        "hit_id",
        "ts",
        "received",
        "visitor_id",
        "event",
        "url",
        "path",
        "ip",
        "source",
        "version",
    ]
    rows = [
        [
            "shop",
            "p1",
            ts,
            ts,
            "cookie1",
            "pageview",
            "https://shop.example/item?id=7",
            "/item",
            "203.0.113.0",
            "pixel",
            1,
        ],
        [
            "shop",
            "p2",
            ts,
            ts,
            "cookie2",
            "click",
            "https://shop.example/other",
            "/other",
            "203.0.113.0",
            "pixel",
            1,
        ],
        ["shop", "l1", ts, ts, "logvid", "pageview", "/other", "/other", "203.0.113.0", "log", 1],
        [
            "elsewhere",
            "p3",
            ts,
            ts,
            "cookie3",
            "pageview",
            "/other",
            "/other",
            "203.0.113.0",
            "pixel",
            1,
        ],
    ]
    warehouse.insert(ch, f"{db}.hits", rows, cols)
    frame = '203.0.113.9 - - [10/Oct/2023:13:55:36 -0700] "GET {} HTTP/1.1" 200 1 "-" "UA"\n'
    path = write(
        "both.log", frame.format("/item?id=7") + frame.format("/other") + frame.format("/item?id=8")
    )
    index = TrackedIndex(clickhouse_loader(ch, db, "shop"), window_ms=10_000)
    hits, stats = run_import([path], site="shop", tracked=index)
    # /item (pixel pageview 2 s later) is tracked; /other only has a click, a log hit and another site's hit
    assert dict(stats.skipped) == {"tracked": 1}
    assert [h.url for h in hits] == ["/other", "/item?id=8"]
    assert index.pixel_hits == 1


def test_sql_string_literal_escapes_quotes_and_backslashes():
    from importer.tracked import sql_string

    assert sql_string("it's a\\b") == "'it\\'s a\\\\b'"
