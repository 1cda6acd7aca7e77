from __future__ import annotations

import pytest

from clickstream.hit import Hit, HitDecodeError


def make(**kw: object) -> Hit:
    base: dict[str, object] = dict(
        site="demo",
        visitor_id="v" * 32,
        hit_id="h1",
        ts=1000,
        received=1000,
        url="https://a.example/",
    )
    base.update(kw)
    return Hit(**base)  # type: ignore[arg-type]


def test_round_trip_and_key() -> None:
    hit = make(props={"a": "b"}, search_results=3, nav="back_forward")
    again = Hit.from_json(hit.to_json())
    assert again == hit and again.v == 1
    assert hit.key == b"demo|" + b"v" * 32


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "not JSON"),
        (b"[]", "not an object"),
        (b'{"v": 2}', "unsupported version 2"),
        (make().to_json().replace(b'"v":1', b'"v":1,"extra":1'), "unknown fields"),
        (make().to_json().replace(b'"ts":1000', b'"ts":"soon"'), "ts must be epoch"),
        (make().to_json().replace(b'"site":"demo"', b'"site":""'), "site is empty"),
        (make().to_json().replace(b'"nav":""', b'"nav":"jump"'), "bad nav"),
        (make(props={str(i): "x" for i in range(31)}).to_json(), "props must be an object"),
        (make(url="https://a.example/" + "x" * 2001).to_json(), "url too long"),
    ],
)
def test_poison_records_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(HitDecodeError, match=reason):
        Hit.from_json(raw)
