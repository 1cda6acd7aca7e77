"""GET /t.js: cacheable and versioned (an ETag of its bytes, 304 on revalidation)."""

from __future__ import annotations

import hashlib

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from collector.app import STATIC, tracker_js


def client() -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/t.js", tracker_js)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c.test")


async def test_tracker_is_cacheable_with_an_etag_of_its_bytes() -> None:
    body = (STATIC / "t.js").read_bytes()
    version = hashlib.sha256(body).hexdigest()[:16]
    async with client() as c:
        r = await c.get("/t.js")
        assert r.status_code == 200 and r.content == body
        assert r.headers["content-type"].startswith("application/javascript")
        assert r.headers["cache-control"] == "public, max-age=3600"
        assert r.headers["etag"] == f'"{version}"'
        assert r.headers["access-control-allow-origin"] == "*"


async def test_revalidation_answers_304_without_a_body() -> None:
    async with client() as c:
        etag = (await c.get("/t.js")).headers["etag"]
        for header in (etag, f"W/{etag}", f'"old", {etag}', "*"):
            r = await c.get("/t.js", headers={"if-none-match": header})
            assert r.status_code == 304 and r.content == b""
            assert r.headers["etag"] == etag and "max-age" in r.headers["cache-control"]
        r = await c.get("/t.js", headers={"if-none-match": '"old"'})
        assert r.status_code == 200 and r.content


async def test_the_versioned_url_is_immutable_and_an_old_version_is_not() -> None:
    async with client() as c:
        version = (await c.get("/t.js")).headers["etag"].strip('"')
        r = await c.get("/t.js", params={"v": version})
        assert r.status_code == 200
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        r = await c.get("/t.js", params={"v": "0000000000000000"})
        assert r.headers["cache-control"] == "public, max-age=3600"
