from __future__ import annotations

import gzip
import hashlib
import shutil

import pytest

from clickstream.hit import Hit
from importer.convert import Filters, parse_methods, parse_statuses
from tests.importer.importlog_helpers import LINE, SAMPLE, run_import


def test_real_log_counts_by_reason():
    hits, stats = run_import([str(SAMPLE)])
    # hand-checked with grep/awk: 1 HEAD, 4 x 404, 73 css/png/ico/gif/jpg/txt
    assert (stats.lines, stats.imported, dict(stats.skipped)) == (
        202,
        124,
        {"method": 1, "status": 4, "static": 73},
    )
    assert len(hits) == 124
    assert stats.examples["method"] == [
        f'{SAMPLE}:90: 46.105.125.31 - - [18/May/2015:00:05:19 +0000] "HEAD /projects/xdotool/ HTTP/1.1" 200 - "-" "IrssiUrlLog/0.2"'
    ]


def test_every_hit_survives_the_kafka_encoding():
    hits, _ = run_import([str(SAMPLE)])
    assert [Hit.from_json(h.to_json()) for h in hits] == hits
    assert {h.source for h in hits} == {"log"}


def test_hit_fields_follow_the_documented_definitions(write):
    (hit,), _ = run_import_line(write, LINE, site="shop", received=1_764_000_000_000)
    ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/118.0"
    assert (
        hit.visitor_id
        == hashlib.blake2b(f"203.0.113.9\x1f{ua}".encode(), digest_size=16).hexdigest()
    )
    assert hit.hit_id == hashlib.blake2b(f"shop\x1f{LINE}".encode(), digest_size=16).hexdigest()
    assert (hit.site, hit.ts, hit.received, hit.event) == (
        "shop",
        1696971336000,
        1_764_000_000_000,
        "pageview",
    )
    assert (hit.url, hit.referrer, hit.user_agent) == (
        "/shop/item?id=7&utm_source=news",
        "https://www.example.org/start",
        ua,
    )
    assert (hit.utm_source, hit.utm_medium, hit.ip) == ("news", "", "203.0.113.0")


def run_import_line(write, line: str, **kw: object):
    return run_import([write("one.log", line + "\n")], **kw)


def test_host_option_and_untruncated_ip(write):
    (hit,), _ = run_import_line(write, LINE, host="www.example.org", ip_truncate=False)
    assert (hit.url, hit.ip) == (
        "http://www.example.org/shop/item?id=7&utm_source=news",
        "203.0.113.9",
    )


def test_reimport_gives_the_same_ids_whatever_the_file_name_or_compression(tmp_path):
    first, _ = run_import([str(SAMPLE)])
    copy = tmp_path / "renamed.log"
    shutil.copy(SAMPLE, copy)
    zipped = tmp_path / "access.log.1.gz"
    zipped.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    again, _ = run_import([str(SAMPLE)])
    renamed, _ = run_import([str(copy)])
    compressed, _ = run_import([str(zipped)])
    ids = [h.hit_id for h in first]
    assert len(set(ids)) == 124
    assert (
        [h.hit_id for h in again]
        == [h.hit_id for h in renamed]
        == [h.hit_id for h in compressed]
        == ids
    )
    assert [(h.ts, h.visitor_id, h.url) for h in again] == [
        (h.ts, h.visitor_id, h.url) for h in first
    ]


def test_identical_lines_in_one_file_are_distinct_hits_and_a_repeated_file_is_not(write):
    path = write("dup.log", f"{LINE}\n{LINE}\n")
    hits, _ = run_import([path])
    assert len({h.hit_id for h in hits}) == 2
    both, _ = run_import([path, write("rotated.log", f"{LINE}\n")])  # a rotated copy repeats a line
    assert [h.hit_id for h in both] == [hits[0].hit_id, hits[1].hit_id, hits[0].hit_id]
    other_site, _ = run_import([path], site="s2")
    assert not {h.hit_id for h in other_site} & {h.hit_id for h in hits}


def test_filters_are_configurable():
    _, everything = run_import(
        [str(SAMPLE)], filters=Filters(methods=None, statuses=None, skip_static=False)
    )
    assert (everything.imported, everything.skipped_total) == (202, 0)
    _, with_404 = run_import([str(SAMPLE)], filters=Filters(statuses=parse_statuses("200-399,404")))
    assert (with_404.imported, dict(with_404.skipped)) == (128, {"method": 1, "static": 73})
    _, head_too = run_import([str(SAMPLE)], filters=Filters(methods=parse_methods("get,head")))
    assert head_too.imported == 125


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("200-399", ((200, 399),)), ("200, 404", ((200, 200), (404, 404))), ("ALL", None)],
)
def test_parse_statuses(spec, expected):
    assert parse_statuses(spec) == expected


@pytest.mark.parametrize("spec", ["", "2xx", "399-200", "600", "200-"])
def test_parse_statuses_rejects(spec):
    with pytest.raises(ValueError, match="--status"):
        parse_statuses(spec)


@pytest.mark.parametrize("spec", ["", ",", "GET;DROP", "G3T"])
def test_parse_methods_rejects(spec):
    with pytest.raises(ValueError, match="--methods"):
        parse_methods(spec)


def test_redirects_are_not_page_views_but_304_is(write):
    """/old 301 -> /new 200: one page view (/new), as Matomo's importer and AWStats count;
    a 304 (the browser's cached copy, revalidated) is a page view; --status brings 3xx back."""
    ua = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"
    lines = "".join(
        f'203.0.113.9 - - [10/Jan/2025:11:00:0{i} +0000] "GET {path} HTTP/1.1" {status} 0 "-" "{ua}"\n'
        for i, (path, status) in enumerate(
            [
                ("/old", 301),
                ("/new", 200),
                ("/moved", 302),
                ("/temp", 307),
                ("/cached", 304),
                ("/part", 206),
            ]
        )
    )
    path = write("r.log", lines)
    hits, stats = run_import([path])
    assert [h.url for h in hits] == ["/new", "/cached", "/part"]
    assert dict(stats.skipped) == {"status": 3}
    with_redirects, _ = run_import([path], filters=Filters(statuses=parse_statuses("200-399")))
    assert len(with_redirects) == 6


def test_a_downloaded_file_is_a_download_event_not_a_page(write):
    ua = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"
    lines = "".join(
        f'203.0.113.9 - - [10/Jan/2025:11:00:0{i} +0000] "GET {path} HTTP/1.1" 200 0 "-" "{ua}"\n'
        for i, path in enumerate(
            ["/docs/", "/docs/guide.PDF", "/dl/app.tar.gz?v=2", "/report.pdf.html"]
        )
    )
    hits, stats = run_import([write("d.log", lines)])
    assert [(h.url, h.event, h.is_page) for h in hits] == [
        ("/docs/", "pageview", True),
        ("/docs/guide.PDF", "download", False),
        ("/dl/app.tar.gz?v=2", "download", False),
        ("/report.pdf.html", "pageview", True),
    ]
    assert stats.imported == 4
    for h in hits:
        Hit.from_json(h.to_json())


def test_an_ipv4_mapped_ipv6_address_is_the_ipv4_address(write):
    # a dual-stack server (listening on [::]) logs IPv4 clients as ::ffff:a.b.c.d: that is
    # the IPv4 client, one visitor with its plain form, truncated to its /24 (not to the
    # /48 "::" that every IPv4 client would share); other spellings of one IPv6 address too
    ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/118.0"
    plain = LINE
    mapped = LINE.replace("203.0.113.9", "::ffff:203.0.113.9", 1)
    six = LINE.replace("203.0.113.9", "2001:db8::7", 1)
    six_long = LINE.replace("203.0.113.9", "2001:DB8:0:0::7", 1)
    path = write("dual.log", "\n".join([plain, mapped, six, six_long]) + "\n")
    hits, _ = run_import([path])
    expected_v4 = hashlib.blake2b(f"203.0.113.9\x1f{ua}".encode(), digest_size=16).hexdigest()
    expected_v6 = hashlib.blake2b(f"2001:db8::7\x1f{ua}".encode(), digest_size=16).hexdigest()
    assert [(h.visitor_id, h.ip) for h in hits] == [
        (expected_v4, "203.0.113.0"),
        (expected_v4, "203.0.113.0"),
        (expected_v6, "2001:db8::"),
        (expected_v6, "2001:db8::"),
    ]
    (untruncated,), _ = run_import([write("m.log", mapped + "\n")], ip_truncate=False)
    assert untruncated.ip == "203.0.113.9"


def test_a_visitors_lines_within_one_second_keep_their_file_order(write):
    # a log's clock has 1 s steps: a page and the next one (or an HTML fragment it loads)
    # often share the second; the sessionizer orders hits by (ts, hit_id), and hit_id is a
    # hash, so the entry page, the exit page and the path came out in a random order
    from sessionizer.enrich import enrich
    from tests.sessionizer.factory import CTX, by_start, run

    lines = []
    for n in range(8):
        for page in ("/first", "/second", "/third"):
            lines.append(
                LINE.replace("203.0.113.9", f"192.0.2.{n}", 1).replace(
                    "/shop/item?id=7&utm_source=news", page
                )
            )
    lines.append(LINE.replace("/shop/item?id=7&utm_source=news", "/other-visitor"))
    hits, _ = run_import([write("same-second.log", "\n".join(lines) + "\n")])
    t = 1696971336000
    # the k-th line of a visitor within one second gets k ms (the log cannot say more)
    assert [h.ts - t for h in hits] == [0, 1, 2] * 8 + [0]
    enriched = [enrich(h, CTX, partition=0, offset=i) for i, h in enumerate(hits)]
    wh, _ = run([e for e in enriched if not isinstance(e, str)])
    paths = [s["paths"] for s in by_start(wh)]
    assert sorted(paths) == sorted([["/first", "/second", "/third"]] * 8 + [["/other-visitor"]])
    again, _ = run_import([write("again.log", "\n".join(lines) + "\n")])
    assert [(h.hit_id, h.ts) for h in again] == [(h.hit_id, h.ts) for h in hits]


NGINX_MAIN = (  # nginx.conf's stock `main` log_format
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for"'
)


def test_trust_proxy_takes_the_client_ip_from_x_forwarded_for(write):
    # behind a load balancer every line's $remote_addr is the balancer: with the setting
    # trust_proxy (the collector's, `--trust-proxy`) the client is X-Forwarded-For's first address
    lines = [
        LINE + ' "198.51.100.7, 10.0.0.2"',
        LINE.replace("203.0.113.9", "203.0.113.9", 1) + ' "2001:db8::9"',
        LINE + ' "-"',  # no header: the remote address
        LINE + ' "unknown"',  # not an IP: the remote address
        LINE + ' "::ffff:198.51.100.8"',
    ]
    path = write("lb.log", "\n".join(lines) + "\n")
    behind, _ = run_import([path], fmt=NGINX_MAIN, trust_proxy=True)
    assert [h.ip for h in behind] == [
        "198.51.100.0",
        "2001:db8::",
        "203.0.113.0",
        "203.0.113.0",
        "198.51.100.0",
    ]
    ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/118.0"
    assert (
        behind[0].visitor_id
        == hashlib.blake2b(f"198.51.100.7\x1f{ua}".encode(), digest_size=16).hexdigest()
    )
    # off (the default): X-Forwarded-For is a header anyone can send, as for the collector
    direct, _ = run_import([path], fmt=NGINX_MAIN)
    assert {h.ip for h in direct} == {"203.0.113.0"}
    # the Apache spelling of the header
    apache = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" "%{X-Forwarded-For}i"'
    (hit, *_), _ = run_import([path], fmt=apache, trust_proxy=True)
    assert hit.ip == "198.51.100.0"


def test_import_log_passes_the_trust_proxy_setting(write, monkeypatch):
    from clickstream import settings as cs_settings
    from importer import run as importer_run
    from tests.importer.test_importlog_cli import parse

    path = write("lb.log", LINE + ' "198.51.100.7"\n')
    args = parse(path, "--site", "s", "--format", NGINX_MAIN, "--dry-run", "--no-progress")
    seen: list[str] = []
    real = importer_run.iter_hits

    def spy(*a, **kw):
        for h in real(*a, **kw):
            seen.append(h.ip)
            yield h

    monkeypatch.setattr(importer_run, "iter_hits", spy)
    assert importer_run.main(args, cs_settings.load(flags={"trust_proxy": "on"}, env={})) == 0
    assert importer_run.main(args, cs_settings.load(flags={}, env={})) == 0
    assert seen == ["198.51.100.0", "203.0.113.0"]


def test_a_format_whose_only_client_address_is_x_forwarded_for_uses_it(write):
    # Apache's LogFormat "%{X-Forwarded-For}i %l %u %t ..." (a proxy's log): without it
    # every visitor would be its user agent alone
    fmt = '%{X-Forwarded-For}i %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
    line = LINE.replace("203.0.113.9", "198.51.100.7", 1)
    (hit,), _ = run_import([write("xff.log", line + "\n")], fmt=fmt)
    assert hit.ip == "198.51.100.0"


def test_the_millisecond_order_does_not_depend_on_the_filters(write):
    # a re-import with wider filters must give a page the same ts: a skipped line of the
    # same second (a stylesheet, a HEAD) still takes its place in the order
    lines = [
        LINE,
        LINE.replace("/shop/item?id=7&utm_source=news", "/style.css"),
        LINE.replace("GET ", "HEAD ", 1),
        LINE.replace("/shop/item?id=7&utm_source=news", "/next"),
    ]
    path = write("mixed.log", "\n".join(lines) + "\n")
    narrow, _ = run_import([path])
    wide, _ = run_import([path], filters=Filters(methods=None, skip_static=False))
    t = 1696971336000
    assert [(h.url, h.ts - t) for h in narrow] == [
        ("/shop/item?id=7&utm_source=news", 0),
        ("/next", 3),
    ]
    assert [h.ts - t for h in wide] == [0, 1, 2, 3]
