from __future__ import annotations

import pytest

from importer.formats import FormatError, LineError, LogLine, compile_format
from tests.importer.importlog_helpers import LINE

TS = 1696971336000  # 2023-10-10 20:55:36 UTC == 13:55:36 -0700


def test_combined_preset_parses_every_field():
    assert compile_format("combined").parse(LINE) == LogLine(
        ip="203.0.113.9",
        ts=TS,
        method="GET",
        target="/shop/item?id=7&utm_source=news",
        protocol="HTTP/1.1",
        status=200,
        referrer="https://www.example.org/start",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/118.0",
        host="",
    )


def test_apache_logformat_string_equals_the_preset():
    fmt = compile_format('%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"')
    assert fmt.name == "custom"
    assert fmt.parse(LINE) == compile_format("combined").parse(LINE)


def test_nginx_log_format_string():
    fmt = compile_format(
        '$remote_addr - $remote_user [$time_local] "$request" $status '
        '$body_bytes_sent "$http_referer" "$http_user_agent"'
    )
    assert fmt.parse(LINE) == compile_format("combined").parse(LINE)


def test_common_has_no_referrer_or_user_agent():
    line = compile_format("common").parse(
        '10.0.0.1 - bob [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.0" 304 -'
    )
    assert (line.ip, line.ts, line.target, line.status, line.referrer, line.user_agent) == (
        "10.0.0.1",
        1704067200000,
        "/",
        304,
        "",
        "",
    )


def test_nginx_custom_fields_iso_time_split_request_and_host():
    fmt = compile_format(
        '$host $remote_addr [$time_iso8601] "$request_method $request_uri $server_protocol" '
        '$status $request_time "$http_user_agent"'
    )
    line = fmt.parse(
        'shop.example [2001:db8::1] [2024-02-29T23:59:59+01:00] "POST /cart?x=1 HTTP/2.0" 201 0.004 "ua"'.replace(
            "[2001:db8::1]", "2001:db8::1"
        )
    )
    assert (
        line.host,
        line.ip,
        line.ts,
        line.method,
        line.target,
        line.protocol,
        line.status,
        line.user_agent,
    ) == ("shop.example", "2001:db8::1", 1709247599000, "POST", "/cart?x=1", "HTTP/2.0", 201, "ua")


def test_apache_vhost_and_method_path_query_directives():
    fmt = compile_format('%v %h %t "%m %U%q %H" %>s %D "%{User-Agent}i"')
    line = fmt.parse(
        'www.example.org 192.0.2.1 [05/Mar/2024:10:00:00 +0000] "GET /a/b?c=d HTTP/1.1" 200 1234 "UA"'
    )
    assert (line.host, line.method, line.target, line.status, line.user_agent) == (
        "www.example.org",
        "GET",
        "/a/b?c=d",
        200,
        "UA",
    )


def test_vhost_combined_preset():
    line = compile_format("vhost_combined").parse(
        'example.org:443 192.0.2.1 - - [05/Mar/2024:10:00:00 +0000] "GET /x HTTP/1.1" 200 5 "-" "UA"'
    )
    assert (line.host, line.target, line.referrer) == ("example.org", "/x", "")


def test_escaped_quote_inside_user_agent():
    line = compile_format("combined").parse(LINE.replace("Firefox/118.0", 'say \\"hi\\"'))
    assert line.user_agent == 'Mozilla/5.0 (X11; Linux x86_64) say "hi"'


def test_preset_tolerates_trailing_fields_custom_format_does_not():
    extra = LINE + " 0.123 upstream=10.0.0.2:80"
    assert compile_format("combined").parse(extra).status == 200
    with pytest.raises(LineError, match="malformed"):
        compile_format('%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"').parse(extra)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "malformed"),
        ("hello world", "malformed"),
        (LINE.replace("10/Oct/2023", "10/Foo/2023"), "bad_time"),
        (LINE.replace("10/Oct/2023", "32/Oct/2023"), "bad_time"),
        (LINE.replace("13:55:36", "25:55:36"), "bad_time"),
        (LINE.replace("10/Oct/2023", "10/Oct/9999"), "bad_time"),
        (LINE.replace("GET /shop/item?id=7&utm_source=news HTTP/1.1", "GET"), "bad_request"),
        (
            LINE.replace("GET /shop/item?id=7&utm_source=news HTTP/1.1", "\\x16\\x03\\x01"),
            "bad_request",
        ),
        (LINE.replace('HTTP/1.1" 200', 'HTTP/1.1" 2000'), "malformed"),
        (LINE.replace('"https://www', "https://www"), "malformed"),
    ],
)
def test_bad_lines_raise_their_reason(line: str, reason: str):
    with pytest.raises(LineError) as info:
        compile_format("combined").parse(line)
    assert info.value.args[0] == reason


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "preset"),
        ("x" * 3000, "preset"),
        ("no directives at all", "no %directives"),
        ('%h "%r" %>s', "no request time"),
        ("%h %t %>s", "no request"),
        ("%h %t %r %>s", "double quotes"),
        ('%h %{%Y-%m-%d}t "%r"', "not supported"),
        ('$remote_addr $status "$request"', "no request time"),
    ],
)
def test_bad_formats_say_what_is_wrong(spec: str, message: str):
    with pytest.raises(FormatError, match=message):
        compile_format(spec)


def test_nginx_json_log_format_given_as_its_own_string():
    # log_format json escape=json '{…}': the format string is the log_format's own text;
    # JSON's \" and \\ escapes are undone as in a quoted field
    fmt = (
        '{"time":"$time_iso8601","remote_addr":"$remote_addr","request":"$request",'
        '"status":$status,"bytes":$body_bytes_sent,"referer":"$http_referer",'
        '"ua":"$http_user_agent","rt":$request_time}'
    )
    line = (
        '{"time":"2023-10-10T13:55:36-07:00","remote_addr":"2001:db8::5",'
        '"request":"GET /a?b=1 HTTP/2.0","status":200,"bytes":512,"referer":"",'
        '"ua":"Mozilla/5.0 \\"x\\" \\\\y","rt":0.004}'
    )
    assert compile_format(fmt).parse(line) == LogLine(
        ip="2001:db8::5",
        ts=TS,
        method="GET",
        target="/a?b=1",
        protocol="HTTP/2.0",
        status=200,
        referrer="",
        user_agent='Mozilla/5.0 "x" \\y',
        host="",
    )
