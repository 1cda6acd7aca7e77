"""The admin identity/erase/export API in-process on chDB: happy path and bad bodies."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.privacy.conftest import ADMIN, bearer, client, make_app
from tests.privacy.helpers import hit, write

AUTH = bearer(ADMIN)


def app_on(tmp_path: Path, ch, database: str):  # type: ignore[no-untyped-def]
    app = make_app(tmp_path, database=database)
    app.app.state.warehouse = ch
    return app.app


async def test_identify_merge_undo_export_erase_over_http(
    tmp_path: Path, ch, database: str
) -> None:  # type: ignore[no-untyped-def]
    write(
        ch, database, [hit("shop", "phone0001", 0, crm="c1"), hit("shop", "tab00001", 3, crm="c2")]
    )
    async with client(app_on(tmp_path, ch, database)) as c:
        r = await c.post(
            "/api/identify",
            json={"site": "shop", "visitor_id": "laptop01", "crm_id": "c1"},
            headers=AUTH,
        )
        assert r.status_code == 200 and r.json()["after"]["links"][0][:2] == ["laptop01", "c1"]
        r = await c.post(
            "/api/identify/merge",
            json={"site": "shop", "from_crm": "c2", "into_crm": "c1"},
            headers=AUTH,
        )
        merge_id = r.json()["change_id"]
        r = await c.post(
            "/api/identify/merge",
            json={"site": "shop", "from_crm": "c2", "into_crm": "c1"},
            headers=AUTH,
        )
        assert r.status_code == 400 and r.json() == {
            "error": "'c2' is already merged into 'c1'; undo that first"
        }
        r = await c.get("/api/export", params={"site": "shop", "crm_id": "c1"}, headers=AUTH)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert r.headers["content-disposition"] == 'attachment; filename="clickstream-export.json"'
        assert r.json()["visitor_ids"] == ["laptop01", "phone0001", "tab00001"]
        r = await c.post(
            "/api/identify/undo", json={"site": "shop", "change_id": merge_id}, headers=AUTH
        )
        assert r.status_code == 200 and r.json()["action"] == "undo"
        r = await c.post(
            "/api/erase", json={"site": "shop", "visitor_id": "tab00001"}, headers=AUTH
        )
        assert r.json() == {
            "visitors": 1,
            "crm_ids": 0,
            "deleted": {"hits": 1, "identities": 1, "identity_audit": 0, "sessions": 1},
        }


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/identify", b"not json", 400, "body must be a JSON object"),
        ("/api/identify", b"[1, 2]", 400, "body must be a JSON object"),
        (
            "/api/identify",
            b'{"site": "shop", "visitor_id": "v1234567", "crm_id": "c1", "admin": true}',
            400,
            "unknown fields ['admin']",
        ),
        (
            "/api/identify",
            b'{"site": "shop", "visitor_id": "v1234567"}',
            400,
            "crm_id must be 1-128 characters",
        ),
        (
            "/api/identify",
            b'{"site": "shop", "visitor_id": ["x"], "crm_id": "c1"}',
            400,
            "visitor_id must be",
        ),
        ("/api/identify", b"{" + b" " * 20_000 + b"}", 413, "body larger than 16384 bytes"),
        (
            "/api/identify/merge",
            b'{"site": "shop", "from_crm": "a", "into_crm": "a"}',
            400,
            "into itself",
        ),
        ("/api/identify/undo", b'{"site": "shop", "change_id": 7}', 400, "32 hex digits"),
        ("/api/erase", b'{"site": "shop"}', 400, "exactly one of visitor_id or crm_id"),
        (
            "/api/erase",
            b'{"site": "shop", "visitor_id": "a1234567", "crm_id": "c1"}',
            400,
            "exactly one of",
        ),
        ("/api/erase", b'{"site": "../etc", "crm_id": "c1"}', 400, "site must be"),
    ],
)
async def test_bad_bodies_get_a_clear_4xx(
    tmp_path: Path,
    ch,
    database: str,
    path: str,
    body: bytes,  # type: ignore[no-untyped-def]
    status: int,
    message: str,
) -> None:
    async with client(app_on(tmp_path, ch, database)) as c:
        r = await c.post(path, content=body, headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == status and message in r.json()["error"]


async def test_export_refuses_unknown_parameters(tmp_path: Path, ch, database: str) -> None:  # type: ignore[no-untyped-def]
    async with client(app_on(tmp_path, ch, database)) as c:
        r = await c.get(
            "/api/export", params={"site": "shop", "crm_id": "c1", "format": "xml"}, headers=AUTH
        )
        assert r.status_code == 400 and r.json() == {"error": "unknown parameters ['format']"}
        r = await c.get("/api/export", params={"site": "shop"}, headers=AUTH)
        assert r.status_code == 400 and "exactly one of" in r.json()["error"]
