"""Malformed, truncated, non-UTF-8 and hostile lines: all counted and reported, none crash."""

from __future__ import annotations

import gzip

from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.hit import Hit
from tests.importer.importlog_helpers import LINE, run_import

GOOD = LINE.encode()


HOSTILE: list[tuple[bytes, str]] = [  # (line, expected outcome: "imported" or a skip reason)
    (GOOD, "imported"),
    (b"", "malformed"),
    (b"   ", "malformed"),
    (b"\x00\x01\x02 binary junk \xff", "malformed"),
    (GOOD.replace(b"Firefox/118.0", b"caf\xe9 \xff"), "imported"),  # non-UTF-8 inside the UA
    (GOOD.replace(b"Firefox/118.0", b"\x1b[31mred\x1b[0m\x07\x00"), "imported"),  # terminal escapes
    (
        GOOD.replace(b"/shop/item?id=7", b"/search?q=1'%20OR%20'1'='1"),
        "imported",
    ),  # SQL injection is data
    (GOOD.replace(b"Firefox/118.0", b"'; DROP TABLE hits; --"), "imported"),
    (GOOD.replace(b"Firefox/118.0", b"<script>alert(1)</script>"), "imported"),
    (GOOD.replace(b"/shop/item?id=7", b"/" + b"a" * 3000), "url_too_long"),
    (
        GOOD.replace(b"GET /shop/item?id=7&utm_source=news HTTP/1.1", b"\\x16\\x03\\x01\\x02"),
        "bad_request",
    ),
    (GOOD.replace(b"GET /shop/item?id=7&utm_source=news HTTP/1.1", b"-"), "bad_request"),
    (GOOD.replace(b"GET /shop/item", b"GET shop/item"), "bad_target"),
    (GOOD.replace(b"/shop/item?id=7", b"/../../etc/passwd"), "imported"),
    (GOOD.replace(b"10/Oct/2023", b"10/Oct/1969"), "bad_time"),
    (GOOD.replace(b"-0700", b"-0799"), "bad_time"),  # no such UTC offset (minutes over 59)
    (GOOD.replace(b"-0700", b"-1230"), "imported"),  # odd, but a valid offset
    (GOOD.replace(b'"https://www.example.org/start"', b'"unterminated'), "malformed"),
    (GOOD.replace(b" 200 ", b" 999 "), "status"),
    (GOOD.replace(b"GET ", b"POST "), "method"),
    (GOOD.replace(b"/shop/item?id=7", b"/logo.PNG?v=7"), "static"),
    (GOOD + b"\r", "imported"),  # CRLF line ending
    (GOOD + b"\tTRAILING", "imported"),  # extra trailing field (preset tolerates)
]


def test_every_hostile_line_is_counted_under_its_reason(write):
    body = b"\n".join(raw for raw, _ in HOSTILE) + b"\n" + b"x" * 100_000 + b"\n" + GOOD[:60]
    hits, stats = run_import([write("hostile.log", body)])
    expected: dict[str, int] = {}
    for _, outcome in HOSTILE:
        expected[outcome] = expected.get(outcome, 0) + 1
    imported = expected.pop("imported")
    expected["too_long"] = 1
    expected["truncated"] = 1  # the last line, cut mid-way and without a newline
    assert stats.lines == len(HOSTILE) + 2
    assert stats.imported == imported == len(hits)
    assert dict(stats.skipped) == expected
    assert stats.non_utf8 == 2
    assert stats.lines == stats.imported + stats.skipped_total
    for hit in hits:  # every imported hit is a valid record
        assert Hit.from_json(hit.to_json()) == hit
        assert hit.user_agent.isprintable() and hit.url.isprintable()


def test_control_characters_are_removed_not_passed_on(write):
    raw = GOOD.replace(b"Firefox/118.0", b"\x1b[31mred\x1b[0m\x07")
    (hit,), _ = run_import([write("esc.log", raw + b"\n")])
    assert hit.user_agent == "Mozilla/5.0 (X11; Linux x86_64) [31mred[0m"


def test_summary_shows_examples_with_control_characters_escaped(write):
    raw = b"\x1b]0;pwned\x07 not a log line\n" + b"\xff\xfe garbage\n"
    _, stats = run_import([write("bad.log", raw)])
    text = stats.summary()
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]0;pwned\\x07 not a log line" in text
    assert "malformed: 2" in text
    assert "non-UTF-8 lines (decoded with U+FFFD, not skipped): 1" in text


def test_examples_are_capped_per_reason(write):
    _, stats = run_import([write("junk.log", "junk\n" * 1000)])
    assert stats.skipped["malformed"] == 1000
    assert len(stats.examples["malformed"]) == 3


def test_truncated_gzip_is_reported_and_the_lines_before_it_imported(write):
    body = b"\n".join(GOOD.replace(b"id=7", b"id=%d" % n) for n in range(3000)) + b"\n"
    _, stats = run_import([write("cut.log.gz", gzip.compress(body)[:5000])])
    assert stats.skipped["read_error"] == 1
    assert stats.examples["read_error"][0].endswith(
        "EOFError: Compressed file ended before the end-of-stream marker was reached"
    )
    assert 0 < stats.imported < 3000
    assert stats.lines == stats.imported + 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_random_bytes_never_crash_and_every_line_is_accounted_for(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fuzz") / "f.log"
    path.write_bytes(b"\n".join(lines))
    hits, stats = run_import([str(path)])
    assert stats.lines == stats.imported + stats.skipped_total == len(hits) + stats.skipped_total


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.text(max_size=200), st.text(max_size=200))
def test_random_fields_in_a_valid_frame_never_crash(tmp_path_factory, path, referrer, ua):
    frame = '1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET /{} HTTP/1.1" 200 1 "{}" "{}"'
    target = tmp_path_factory.mktemp("fuzz") / "f.log"
    target.write_text(
        frame.format(path, referrer, ua).replace("\n", " ").replace("\r", " ") + "\n",
        encoding="utf-8",
        errors="surrogatepass",
    )
    hits, stats = run_import([str(target)])
    assert stats.lines == 1 == len(hits) + stats.skipped_total
    for hit in hits:
        assert Hit.from_json(hit.to_json()) == hit


def test_non_utf8_lines_are_reported_with_examples_like_skipped_ones(write):
    ua = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"
    line = (
        f'203.0.113.9 - - [10/Jan/2025:11:00:00 +0000] "GET /caf\xe9 HTTP/1.1" 200 0 "-" "{ua}"\n'
    )
    path = write("latin1.log", line.encode("latin-1"))
    hits, stats = run_import([path])
    assert [h.url for h in hits] == ["/caf\ufffd"]
    summary = stats.summary().splitlines()
    at = summary.index("non-UTF-8 lines (decoded with U+FFFD, not skipped): 1")
    assert summary[at + 1] == f"    e.g. {path}:1: " + line.rstrip("\n").replace("\xe9", "\ufffd")


def test_a_double_slash_target_a_bad_utc_offset_and_a_byte_order_mark(write):
    """`GET //evil.example/` made a hit whose host was evil.example; an offset of +9999 was
    taken as 99 h 99 min; a BOM in front of the first line became part of its IP."""
    ua = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"

    def line(target: str, offset: str = "+0000") -> str:
        return f'203.0.113.9 - - [10/Jan/2025:11:00:00 {offset}] "GET {target} HTTP/1.1" 200 0 "-" "{ua}"\n'

    path = write(
        "h.log",
        "\ufeff"
        + line("/first")
        + line("//evil.example/x")
        + line("/late", "+9999")
        + line("/east", "+1400"),
    )
    hits, stats = run_import([path])
    assert [h.url for h in hits] == ["/first", "/evil.example/x", "/east"]
    assert dict(stats.skipped) == {"bad_time": 1}
    assert hits[0].ip == "203.0.113.0" and hits[0].visitor_id == hits[1].visitor_id
    assert hits[2].ts == hits[0].ts - 14 * 3600_000
