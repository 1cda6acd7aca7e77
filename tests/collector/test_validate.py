"""The pixel's parameter decoding and validation (collector.validate): pure functions."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickstream.settings import load
from collector.validate import Drop, Request, _unquote, build_hit, parse_qs

SETTINGS = load(flags={}, env={})
# ASCII text rich in escapes, broken escapes and pluses (what a query string value can be)
ESCAPED = st.lists(
    st.one_of(
        st.sampled_from(
            ["%", "+", "%2", "%zz", "%C3", "%a9", "%A9", "%e2%82%ac", "%F0%9F", "%ff", "%25", "%2B"]
        ),
        st.text(alphabet="abcXYZ09%+-._~/:?=&#", max_size=4),
    ),
    max_size=12,
).map("".join)


def _reference(s: str) -> str:
    """The decoding parse_qs had before: urllib's, strict UTF-8."""
    try:
        return urllib.parse.unquote(s.replace("+", " "), errors="strict")
    except UnicodeDecodeError:
        raise Drop("bad_encoding") from None


@given(ESCAPED)
def test_unquote_decodes_exactly_as_urllib(s: str) -> None:
    try:
        expected = _reference(s)
    except Drop:
        with pytest.raises(Drop) as drop:
            _unquote(s)
        assert drop.value.reason == "bad_encoding"
        return
    assert _unquote(s) == expected


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("https%3A%2F%2Fa.example%2Fx%3Fq%3D1", "https://a.example/x?q=1"),
        ("Red+Shoe%20-%20Shop", "Red Shoe - Shop"),
        ("caf%C3%A9 %c3%a9 %C3%a9", "café é é"),
        ("%E2%82%AC%F0%9F%98%80", "€😀"),
        ("100%", "100%"),  # a lone percent stays
        ("%4", "%4"),
        ("%zz%2", "%zz%2"),
        ("%252F", "%2F"),  # decoded once, not twice
        ("a%2Bb+c", "a+b c"),
    ],
)
def test_unquote_cases(raw: str, decoded: str) -> None:
    assert _unquote(raw) == decoded


@pytest.mark.parametrize(
    "raw", ["%ff", "%C3", "%C3%28", "ok%80", "%ED%A0%80"]
)  # %ED%A0%80: a surrogate
def test_invalid_utf8_is_a_counted_drop(raw: str) -> None:
    with pytest.raises(Drop) as drop:
        parse_qs(b"s=a&t=" + raw.encode())
    assert drop.value.reason == "bad_encoding"


def test_parse_qs_first_value_wins_also_for_an_escaped_key() -> None:
    assert parse_qs(b"%73=one&s=two&u=x&u=y&&=z") == {"s": "one", "u": "x", "": "z"}


def _hit(query: bytes, **req: str):  # type: ignore[no-untyped-def]
    return build_hit(
        parse_qs(query), Request(received=1_700_000_000_000, ip="203.0.113.7", **req), SETTINGS
    )


def test_absent_optional_parameters_give_the_defaults() -> None:
    hit = _hit(b"s=demo&u=https%3A%2F%2Fa.example%2F", user_agent="UA")
    assert (hit.event, hit.referrer, hit.title, hit.search_query, hit.search_results) == (
        "pageview",
        "",
        "",
        "",
        None,
    )
    assert (hit.crm_id, hit.nav, hit.props, hit.ts, hit.received) == (
        "",
        "",
        {},
        1_700_000_000_000,
        1_700_000_000_000,
    )
    assert (hit.utm_source, hit.utm_medium, hit.utm_campaign, hit.utm_term, hit.utm_content) == (
        "",
    ) * 5
    assert (hit.ip, hit.user_agent, hit.source) == ("203.0.113.0", "UA", "pixel")
    hit.check()


def test_given_optional_parameters_are_kept() -> None:
    hit = _hit(
        b"s=demo&u=https%3A%2F%2Fa.example%2F&e=search&r=https%3A%2F%2Fref.example%2F&t=T%09itle&q=shoes&n=0"
        b"&uid=crm-1&nav=back_forward&cts=1000&sts=1500&utm_medium=email&utm_content=c&x_revenue=9.5"
    )
    assert (hit.event, hit.referrer, hit.title, hit.search_query, hit.search_results) == (
        "search",
        "https://ref.example/",
        "T itle",
        "shoes",
        0,
    )
    assert (hit.crm_id, hit.nav, hit.props, hit.ts) == (
        "crm-1",
        "back_forward",
        {"revenue": "9.5"},
        1_700_000_000_000 - 500,
    )
    assert (hit.utm_source, hit.utm_medium, hit.utm_campaign, hit.utm_term, hit.utm_content) == (
        "",
        "email",
        "",
        "",
        "c",
    )
    hit.check()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        # several bad fields: the first in the order of the checks is the reason counted
        (
            b"s=demo&u=https%3A%2F%2Fa.example%2F&r=https%3A%2F%2F" + b"y" * 3000 + b"&t=a%00b",
            "url_too_long",
        ),
        (
            b"s=demo&u=https%3A%2F%2Fa.example%2F&r=https%3A%2F%2F"
            + b"y" * 3000
            + b"&utm_term=%00",
            "bad_chars",
        ),
        (b"s=demo&u=https%3A%2F%2Fa.example%2F&utm_source=a%00b", "bad_chars"),
        (b"s=demo&u=https%3A%2F%2Fa.example%2F&nav=sideways&n=x", "bad_nav"),
        (b"s=demo&u=https%3A%2F%2Fa.example%2F&cts=-1", "bad_cts"),
        (b"s=demo&u=https%3A%2F%2Fa.example%2F&n=99999999999", "bad_n"),
        (b"s=demo&u=https%3A%2F%2Fa.example%2F&uid=" + b"u" * 129, "bad_uid"),
        (b"s=demo&u=https%3A%2F%2Fa.example%2F&e=bad%20event", "bad_event"),
        (b"s=demo&u=ftp%3A%2F%2Fa.example%2F", "bad_url"),
        (b"u=https%3A%2F%2Fa.example%2F", "missing_site"),
    ],
)
def test_bad_fields_are_dropped_with_their_reason(query: bytes, reason: str) -> None:
    with pytest.raises(Drop) as drop:
        _hit(query)
    assert drop.value.reason == reason


def test_a_non_http_referrer_is_left_out_not_dropped() -> None:
    assert _hit(b"s=demo&u=https%3A%2F%2Fa.example%2F&r=android-app%3A%2F%2Fcom.x").referrer == ""
