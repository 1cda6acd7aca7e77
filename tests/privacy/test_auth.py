"""Scoped hashed tokens, the dashboard login, and a walk of the route table: every route
is either protected by require_scope or on the explicit public list."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from clickstream import auth
from clickstream.headers import CSP
from clickstream.settings import SettingsError, load
from tests.privacy.conftest import ADMIN, PASSWORD, READER, bearer, client, make_app

PUBLIC = frozenset(
    {
        "/p.gif",
        "/collect",
        "/t.js",
        "/optout",
        "/r",
        "/healthz",
        "/metrics",
        "/login",
        "/logout",
        "/openapi.json",
    }
)
PUBLIC_MOUNTS = frozenset({"/static", "/reports/static"})  # static assets (JS, CSS)


def walk(routes: list, prefix: str = "") -> list[tuple[str, object]]:  # type: ignore[type-arg]
    out: list[tuple[str, object]] = []
    for r in routes:
        if isinstance(r, Mount):
            if getattr(r, "routes", None):
                out += walk(r.routes, prefix + r.path)
            else:
                out.append((prefix + r.path, r))
        else:
            out.append((prefix + r.path, r))
    return out


async def test_every_route_is_protected_or_explicitly_public(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    protected = []
    async with client(app.app) as c:
        for path, route in walk(app.app.routes):
            if path in PUBLIC or (isinstance(route, Mount) and path in PUBLIC_MOUNTS):
                continue
            assert isinstance(route, Route), f"{path}: a mount that is neither public nor walked"
            scope = getattr(route.endpoint, "required_scope", None)
            assert scope in ("read", "admin"), f"{path} is not public and has no require_scope(...)"
            url = re.sub(r"\{[^}]+\}", "x", path)
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                assert (await c.request(method, url)).status_code == 401, (method, path)
                assert (await c.request(method, url, headers=bearer("wrong"))).status_code == 401, (
                    method,
                    path,
                )
                assert (
                    await c.request(method, url, headers={"Authorization": ADMIN})
                ).status_code == 401
                if scope == "admin":
                    r = await c.request(method, url, headers=bearer(READER))
                    assert r.status_code == 403, (method, path)
                protected.append(f"{method} {path}")
    assert {
        "POST /api/sql",
        "POST /api/flush",
        "POST /api/identify",
        "POST /api/identify/merge",
        "POST /api/identify/undo",
        "POST /api/erase",
        "GET /api/export",
    } <= set(protected)


async def test_tokens_are_kept_as_digests_and_scopes_differ(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    creds = app.app.state.credentials
    assert creds.admin == hashlib.sha256(ADMIN.encode()).digest()
    assert ADMIN not in repr(vars(app.app.state)) and READER not in repr(vars(app.app.state))
    assert not hasattr(app.app.state, "api_token")
    assert creds.token_scope(ADMIN) == "admin" and creds.token_scope(READER) == "read"
    assert creds.token_scope("") is None and creds.token_scope(ADMIN + "x") is None
    assert creds.token_scope("x" * 10_000) is None
    assert (
        creds.token_scope("sha256:" + hashlib.sha256(READER.encode()).hexdigest()) is None
    )  # a digest is no key
    async with client(app.app) as c:
        assert (
            await c.post("/api/flush", headers=bearer(ADMIN))
        ).status_code == 409  # past auth: no sessionizer here
        assert (await c.post("/api/flush", headers=bearer(READER))).status_code == 403


async def test_a_read_scope_route_takes_read_and_admin_but_nothing_else() -> None:
    @auth.require_scope("read")
    async def report(request: Request) -> Response:
        return PlainTextResponse(request.state.actor)

    app = Starlette(routes=[Route("/api/reports/x", report)])
    app.state.credentials = auth.Credentials.from_settings(
        load(flags={"read_token": READER}, env={}), ADMIN, b"k" * 32
    )
    async with client(app) as c:
        assert (await c.get("/api/reports/x")).status_code == 401
        r = await c.get(
            "/api/reports/x", headers={"accept": "text/html"}
        )  # a browser: to the login form
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/api/reports/x"
        assert (await c.get("/api/reports/x", headers=bearer(READER))).text.startswith("api:read:")
        assert (await c.get("/api/reports/x", headers=bearer(ADMIN))).text.startswith("api:admin:")
    with pytest.raises(ValueError):
        auth.require_scope("root")
    bare = Starlette(routes=[Route("/api/reports/x", report)])  # no credentials configured: closed
    async with client(bare) as c:
        assert (await c.get("/api/reports/x", headers=bearer(ADMIN))).status_code == 401
    bare.state.credentials = auth.Credentials.from_tokens(ADMIN, read=READER)
    async with client(bare) as c:
        assert (await c.get("/api/reports/x", headers=bearer(READER))).status_code == 200


def test_bad_hashed_setting_names_the_key() -> None:
    with pytest.raises(SettingsError, match="setting 'read_token'"):
        auth.Credentials.from_settings(
            load(flags={"read_token": "sha256:abc"}, env={}), ADMIN, b"k" * 32
        )


async def test_login_with_token_or_password_sets_a_signed_strict_cookie(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with client(app.app, "https://cs.test") as c:
        page = await c.get("/login?next=/dash")
        assert page.status_code == 200 and 'value="/dash"' in page.text
        r = await c.post("/login", data={"secret": PASSWORD, "next": "/dash"})
        assert r.status_code == 303 and r.headers["location"] == "/dash"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("_cs_session=read.")
        for flag in ("HttpOnly", "SameSite=strict", "Secure", "Path=/"):
            assert flag in cookie, flag
        assert (await c.post("/api/flush")).status_code == 403  # a password login reads only
        await c.post("/logout")
        assert (await c.post("/api/flush")).status_code == 401
        r = await c.post("/login", data={"secret": ADMIN, "next": "//evil.example/"})
        assert r.headers["location"] == "/" and "_cs_session=admin." in r.headers["set-cookie"]
        assert (await c.post("/api/flush")).status_code == 409
        # a cookie-authenticated write from another origin is refused (CSRF)
        assert (
            await c.post("/api/flush", headers={"origin": "https://evil.example"})
        ).status_code == 401
        assert (
            await c.post("/api/flush", headers={"origin": "https://cs.test"})
        ).status_code == 409
    async with client(app.app) as c:
        r = await c.post("/login", data={"secret": "guess"})
        assert (
            r.status_code == 401
            and "Wrong token or password" in r.text
            and "set-cookie" not in r.headers
        )
        assert (
            await c.post(
                "/login",
                content=b"secret=" + b"a" * 5000,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        ).status_code == 413


def test_session_cookies_cannot_be_forged_or_outlive_their_time() -> None:
    creds = auth.Credentials.from_settings(load(flags={}, env={}), ADMIN, b"s" * 32)
    good = creds.sign("read", now=1000.0)
    assert creds.verify(good, now=1000.0) == "read"
    assert creds.verify(good, now=1000.0 + 12 * 3600 + 1) is None  # session_hours = 12
    assert creds.verify(good.replace("read.", "admin."), now=1000.0) is None
    assert creds.verify(good[:-1] + ("0" if good[-1] != "0" else "1"), now=1000.0) is None
    for junk in ("", "admin", "admin.x.y", "read.99999999999.", "x" * 500):
        assert creds.verify(junk, now=1000.0) is None
    other = auth.Credentials.from_settings(load(flags={}, env={}), "another-admin-token", b"s" * 32)
    assert other.verify(good, now=1000.0) is None  # a new admin token logs everyone out


async def test_security_headers_and_csp_on_html(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with client(app.app, "https://cs.test") as c:
        page = await c.get("/login")
        assert page.headers["content-security-policy"] == CSP
        assert (
            "script-src 'self'" in CSP
            and "frame-ancestors 'none'" in CSP
            and "unsafe-eval" not in CSP
        )
        for name, value in (
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "same-origin"),
            ("strict-transport-security", "max-age=31536000"),
        ):
            assert page.headers[name] == value, name
        optout = await c.get("/optout")
        assert optout.headers["content-security-policy"] == CSP
        assert (
            "Secure" in optout.headers["set-cookie"]
            and "HttpOnly" not in optout.headers["set-cookie"]
        )
        metrics = await c.get("/metrics")
        assert metrics.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in metrics.headers
    async with client(app.app) as c:
        assert "strict-transport-security" not in (await c.get("/login")).headers


async def test_login_attempts_are_throttled_per_address(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    transport = httpx.ASGITransport(app=app.app, client=("192.0.2.99", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cs.test") as c:
        codes = [
            (await c.post("/login", data={"secret": f"guess{i}"})).status_code for i in range(12)
        ]
        assert codes == [401] * 10 + [429, 429]
        assert (
            await c.post("/login", data={"secret": ADMIN})
        ).status_code == 429  # even the right one, for now
    async with client(app.app) as c:  # another address is not affected
        assert (await c.post("/login", data={"secret": ADMIN})).status_code == 303


@pytest.mark.parametrize(
    ("flags", "protected"),
    [
        ({}, False),
        ({"read_token": READER}, True),
        ({"dashboard_password": "pw"}, True),
        ({"reports_auth": "on"}, True),
        ({"reports_auth": "off", "read_token": READER}, False),
    ],
)
async def test_reports_are_public_until_a_read_credential_is_configured(
    flags: dict, protected: bool
) -> None:
    @auth.require_scope("read")
    async def report(request: Request) -> Response:
        return PlainTextResponse(request.state.actor)

    app = Starlette(routes=[Route("/api/reports/x", report)])
    app.state.settings = load(flags=flags, env={})
    app.state.credentials = auth.Credentials.from_settings(app.state.settings, ADMIN, b"k" * 32)
    async with client(app) as c:
        r = await c.get("/api/reports/x")
        assert r.status_code == (401 if protected else 200)
        if not protected:
            assert r.text == "public"
        assert (await c.get("/api/reports/x", headers=bearer(ADMIN))).status_code == 200
