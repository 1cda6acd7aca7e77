"""Who may call what: hashed scoped tokens, the dashboard login, ``require_scope``.

Two scopes: ``read`` (reports API and dashboard) and ``admin`` (SQL, flush, identify,
erase, export; admin includes read).  Tokens come from the settings ``api_token``
(admin) and ``read_token``; either may be given as ``sha256:<hex>`` so that the
plaintext is never written in a config file.  Only digests are kept in memory and
compared, always both, with :func:`hmac.compare_digest`.

The dashboard login (``GET/POST /login``) takes a token or ``dashboard_password`` and
sets ``_cs_session``: ``scope.expiry.hmac`` signed with a key derived from a random
secret in ``<data>/session_secret`` and the admin token, so that changing the admin
token logs everyone out.  The cookie is HttpOnly, SameSite=Strict, Secure over https.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from clickstream.metrics import METRICS
from clickstream.settings import Settings, SettingsError
from collector.ratelimit import RateLimiter

SCOPES = ("read", "admin")
SESSION_COOKIE = "_cs_session"
MAX_LOGIN_BODY = 4096
MAX_CREDENTIAL = 512
Endpoint = Callable[[Request], Awaitable[Response]]


def digest(value: str) -> bytes:
    """sha256 of a token or password; ``sha256:<hex>`` is taken as the digest itself."""
    if value.startswith("sha256:"):
        hexpart = value[len("sha256:") :].strip().lower()
        if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
            raise ValueError("a sha256:<hex> value needs 64 hex digits")
        return bytes.fromhex(hexpart)
    return hashlib.sha256(value.encode()).digest()


def _setting_digest(name: str, value: str) -> bytes:
    try:
        return digest(value)
    except ValueError as exc:
        raise SettingsError(f"setting {name!r}: {exc}") from None


def fingerprint(d: bytes) -> str:
    """Short public name of a credential for the audit log (never the token)."""
    return hashlib.sha256(b"fp" + d).hexdigest()[:8]


def session_secret(data_dir: Path) -> bytes:
    """Random 32 bytes kept in <data>/session_secret (0600), shared by all workers."""
    path = data_dir / "session_secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another worker won the race
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


@dataclass(frozen=True)
class Credentials:
    admin: bytes
    read: bytes | None
    password: bytes | None
    key: bytes  # HMAC key of session cookies
    session_s: int

    @classmethod
    def from_settings(
        cls, settings: Settings, admin_token: str, secret: bytes | None = None
    ) -> Credentials:
        if secret is None:
            secret = session_secret(settings.data_dir)
        return cls.from_tokens(
            admin_token,
            settings.read_token,
            settings.dashboard_password,
            secret,
            settings.session_hours,
        )

    @classmethod
    def from_tokens(
        cls,
        admin: str,
        read: str = "",
        password: str = "",
        secret: bytes = b"",
        session_hours: float = 12.0,
    ) -> Credentials:
        """Without a Settings object (tests, embedding): ``app.state.credentials = ...``."""
        key_secret = secret or secrets.token_bytes(32)
        admin_d = _setting_digest("api_token", admin)
        return cls(
            admin=admin_d,
            read=_setting_digest("read_token", read) if read else None,
            password=_setting_digest("dashboard_password", password) if password else None,
            key=hmac.new(key_secret, b"session\x1f" + admin_d, hashlib.sha256).digest(),
            session_s=int(session_hours * 3600),
        )

    def token_scope(self, token: str) -> str | None:
        """The scope a bearer token grants; both digests are always compared."""
        if not token or len(token) > MAX_CREDENTIAL:
            return None
        given = hashlib.sha256(token.encode()).digest()
        is_admin = hmac.compare_digest(given, self.admin)
        is_read = hmac.compare_digest(given, self.read or b"\0" * 32) and self.read is not None
        return "admin" if is_admin else "read" if is_read else None

    def password_ok(self, password: str) -> bool:
        if self.password is None or not password or len(password) > MAX_CREDENTIAL:
            return False
        return hmac.compare_digest(hashlib.sha256(password.encode()).digest(), self.password)

    def sign(self, scope: str, now: float | None = None) -> str:
        expiry = int((time.time() if now is None else now) + self.session_s)
        payload = f"{scope}.{expiry}"
        mac = hmac.new(self.key, payload.encode(), hashlib.sha256).hexdigest()
        return f"{payload}.{mac}"

    def verify(self, cookie: str, now: float | None = None) -> str | None:
        """The scope of a valid, unexpired session cookie, else None."""
        if not cookie or len(cookie) > 200:
            return None
        scope, _, rest = cookie.partition(".")
        expiry, _, mac = rest.partition(".")
        if scope not in SCOPES or not expiry.isdigit():
            return None
        good = hmac.new(self.key, f"{scope}.{expiry}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good.encode(), mac.encode()):
            return None
        if int(expiry) < (time.time() if now is None else now):
            return None
        return scope


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _same_origin(request: Request) -> bool:
    """Cookie-authenticated writes must come from our own pages (CSRF)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # SameSite=Strict already keeps the cookie off cross-site requests
    return urlsplit(origin).netloc == request.headers.get("host", "")


def authenticate(request: Request) -> tuple[str | None, str]:
    """(scope or None, actor name for the audit log)."""
    creds: Credentials | None = getattr(request.app.state, "credentials", None)
    if creds is None:  # an app without credentials configured: fail closed
        return None, "nobody"
    token = _bearer(request)
    if token is not None:
        scope = creds.token_scope(token)
        return scope, f"api:{scope}:{fingerprint(hashlib.sha256(token.encode()).digest())}"
    cookie = request.cookies.get(SESSION_COOKIE, "")
    scope = creds.verify(cookie) if cookie else None
    if scope and request.method not in ("GET", "HEAD") and not _same_origin(request):
        return None, "session:cross-origin"
    return scope, f"session:{scope}"


def _wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def reads_protected(settings: Any) -> bool:
    """Whether the read scope (reports API, dashboard, snippet) needs credentials.

    ``reports_auth``: ``on`` always, ``off`` never, ``auto`` (default) once a
    ``read_token`` or ``dashboard_password`` is configured.  DESIGN.md's reports API
    is open by default, like a Plausible public dashboard; admin routes never are.
    """
    mode = getattr(settings, "reports_auth", "auto")
    if mode == "auto":
        return bool(
            getattr(settings, "read_token", "") or getattr(settings, "dashboard_password", "")
        )
    return bool(mode == "on")


def require_scope(scope: str) -> Callable[[Endpoint], Endpoint]:
    """Guard an endpoint: 401 without credentials (a browser page: 303 to /login),
    403 when the credentials lack ``scope``.  Sets ``request.state.actor``."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")

    def decorate(endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            settings = getattr(request.app.state, "settings", None)
            if scope == "read" and settings is not None and not reads_protected(settings):
                request.state.actor = "public"
                return await endpoint(request)
            granted, actor = authenticate(request)
            if granted is None:
                METRICS.inc("auth_refused_total", reason="unauthenticated")
                if _wants_html(request) and _bearer(request) is None:
                    return RedirectResponse(
                        f"/login?next={quote(request.url.path)}", status_code=303
                    )
                return JSONResponse(
                    {
                        "error": "authentication required (Authorization: Bearer <token>, or log in at /login)"
                    },
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if scope == "admin" and granted != "admin":
                METRICS.inc("auth_refused_total", reason="scope")
                return JSONResponse({"error": "this needs an admin token"}, status_code=403)
            request.state.actor = actor
            return await endpoint(request)

        guarded.__name__ = endpoint.__name__
        guarded.__doc__ = endpoint.__doc__
        guarded.required_scope = scope  # type: ignore[attr-defined]
        return guarded

    return decorate


# --- login / logout ---------------------------------------------------------------------

_LOGIN_PAGE = """<!doctype html><html lang=en><meta charset=utf-8>
<title>Clickstream: log in</title>
<form method=post action=/login>
<h1>Clickstream</h1>{message}
<p><label>Token or password <input type=password name=secret autocomplete=current-password autofocus required maxlength=512></label>
<input type=hidden name=next value="{next}">
<p><button type=submit>Log in</button>
</form></html>"""


def _safe_next(value: str) -> str:
    """Only local paths: no open redirect through ?next=."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 500:
        return "/"
    return value


async def login_form(request: Request) -> Response:
    nxt = _safe_next(request.query_params.get("next", "/"))
    return HTMLResponse(
        _LOGIN_PAGE.format(message="", next=escape(nxt)), headers={"Cache-Control": "no-store"}
    )


def _login_limiter(request: Request) -> RateLimiter:
    """Per app and IP: 10 tries, then one every 6 s."""
    limiter = getattr(request.app.state, "login_limiter", None)
    if limiter is None:
        limiter = request.app.state.login_limiter = RateLimiter(rate=1 / 6, burst=10)
    return limiter


async def login(request: Request) -> Response:
    if not _login_limiter(request).allow(request.client.host if request.client else ""):
        METRICS.inc("logins_total", result="throttled")
        return HTMLResponse(
            "too many login attempts: wait a minute", status_code=429, headers={"Retry-After": "6"}
        )
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > MAX_LOGIN_BODY:
        return HTMLResponse("login form too large", status_code=413)
    body = await request.body()
    if len(body) > MAX_LOGIN_BODY:
        return HTMLResponse("login form too large", status_code=413)
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    secret = (form.get("secret") or [""])[0]
    nxt = _safe_next((form.get("next") or ["/"])[0])
    creds: Credentials = request.app.state.credentials
    scope = creds.token_scope(secret) or ("read" if creds.password_ok(secret) else None)
    if scope is None:
        METRICS.inc("logins_total", result="refused")
        page = _LOGIN_PAGE.format(
            message="<p role=alert>Wrong token or password.", next=escape(nxt)
        )
        return HTMLResponse(page, status_code=401, headers={"Cache-Control": "no-store"})
    METRICS.inc("logins_total", result="ok")
    response = RedirectResponse(nxt, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        creds.sign(scope),
        max_age=creds.session_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def routes() -> list[Route]:
    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
