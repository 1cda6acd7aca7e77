"""collector.snippet: the loader, the pixel tags and their input checks."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from collector.snippet import SnippetError, email_pixel, email_pixel_url, snippet

PIXEL_ATTRS = (
    'width="1" height="1" alt="" referrerpolicy="no-referrer-when-downgrade" '
    'style="position:absolute;border:0"'
)


def test_snippet_is_stub_loader_and_noscript_pixel() -> None:
    got = snippet("shop", "https://stats.example.com/")
    assert got == {
        "js": (
            "<script>window.cs=window.cs||function(){(cs.q=cs.q||[]).push([Date.now(),arguments])};"
            "</script>\n"
            '<script async src="https://stats.example.com/t.js" data-site="shop" '
            'data-collector="https://stats.example.com"></script>\n'
            f'<noscript><img src="https://stats.example.com/p.gif?s=shop" {PIXEL_ATTRS}></noscript>'
        ),
        "pixel": f'<img src="https://stats.example.com/p.gif?s=shop" {PIXEL_ATTRS}>',
    }


def test_snippet_with_respect_dnt_and_a_path_prefix() -> None:
    got = snippet("blog.main", "http://127.0.0.1:8000/cs", respect_dnt=True)
    assert (
        '<script async src="http://127.0.0.1:8000/cs/t.js" data-site="blog.main" '
        'data-collector="http://127.0.0.1:8000/cs" data-respect-dnt="true"></script>'
    ) in got["js"]
    assert got["pixel"].startswith('<img src="http://127.0.0.1:8000/cs/p.gif?s=blog.main" ')


@pytest.mark.parametrize(
    "site",
    ["", "a" * 65, "shop site", 'x"><script>', "-lead", "ü", 42],
    ids=["empty", "too-long", "space", "html", "leading-dash", "non-ascii", "not-str"],
)
def test_bad_site_ids_are_refused_with_the_rule(site: object) -> None:
    with pytest.raises(SnippetError, match=r"1-64 characters of letters, digits"):
        snippet(site, "https://c.example.com")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("c.example.com", "absolute http"),
        ("ftp://c.example.com", "absolute http"),
        ("javascript:alert(1)", "absolute http"),
        ("https://", "absolute http"),
        ("https://c.example.com/?a=1", "no query"),
        ("https://c.example.com/#x", "no query"),
        ('https://c.example.com/"onload="x', "no query"),
        ("https://c.example.com/" + "a" * 500, "at most 500"),
    ],
)
def test_bad_collector_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(SnippetError, match=why):
        snippet("shop", url)


def test_email_pixel_keeps_merge_tags_and_carries_the_campaign() -> None:
    url = email_pixel_url(
        "shop", "https://c.example.com", "spring sale", uid="{{crm_id}}", props={"list": "vip"}
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "c.example.com", "/p.gif")
    assert "uid={{crm_id}}" in parts.query
    assert dict(parse_qsl(parts.query)) == {
        "s": "shop",
        "e": "email_open",
        "u": "https://c.example.com/email/spring%20sale",
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "spring sale",
        "uid": "{{crm_id}}",
        "x_list": "vip",
    }
    tag = email_pixel("shop", "https://c.example.com", "c1", uid="*|CRM|*")
    assert tag == (
        '<img src="https://c.example.com/p.gif?s=shop&amp;e=email_open'
        "&amp;u=https%3A%2F%2Fc.example.com%2Femail%2Fc1&amp;utm_source=newsletter"
        '&amp;utm_medium=email&amp;utm_campaign=c1&amp;uid=*|CRM|*" width="1" height="1" alt="" '
        'style="border:0">'
    )


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"campaign": ""}, "utm_campaign: a non-empty string"),
        ({"campaign": "c" * 201}, "utm_campaign: a non-empty string of at most 200"),
        ({"campaign": "c", "uid": "u" * 129}, "uid: a non-empty string of at most 128"),
        ({"campaign": "c", "props": {"k": "v" * 501}}, "x_k: a non-empty string of at most 500"),
        ({"campaign": "c", "source": ""}, "utm_source"),
        ({"campaign": "c", "props": {"k": ""}}, "x_k"),
        ({"campaign": "c", "url": "mailto:x@example.com"}, "an absolute http"),
        ({"campaign": "c", "props": {f"k{i}": "v" for i in range(31)}}, "at most 30 props"),
    ],
)
def test_email_pixel_refuses_bad_params(kwargs: dict[str, object], why: str) -> None:
    with pytest.raises(SnippetError, match=why):
        email_pixel_url("shop", "https://c.example.com", **kwargs)  # type: ignore[arg-type]


def test_email_pixel_is_accepted_by_the_collector_validator() -> None:
    from clickstream.settings import load
    from collector.validate import Request, build_hit, parse_qs

    url = email_pixel_url("shop", "https://c.example.com", "spring", uid="crm-1")
    params = parse_qs(urlsplit(url).query.encode())
    hit = build_hit(params, Request(received=1_700_000_000_000), load(env={}))
    assert (hit.event, hit.crm_id, hit.url, hit.utm_source, hit.utm_medium, hit.utm_campaign) == (
        "email_open",
        "crm-1",
        "https://c.example.com/email/spring",
        "newsletter",
        "email",
        "spring",
    )


def test_cli_snippet_prints_the_loader_the_pixel_and_an_email_pixel(capsys) -> None:
    from clickstream.cli import main

    base = "https://c.example.com"
    assert main(["snippet", "--site", "shop", "--collector", base, "--email-campaign", "may"]) == 0
    doc = snippet("shop", base)
    assert capsys.readouterr().out == (
        "<!-- JS snippet: paste into every page's <head> -->\n"
        f"{doc['js']}\n"
        "<!-- or the bare pixel (no JS) -->\n"
        f"{doc['pixel']}\n"
        "<!-- email-open pixel: at the end of the email body -->\n"
        f"{email_pixel('shop', base, 'may')}\n"
    )


def test_cli_snippet_refuses_a_bad_site_in_one_line(capsys) -> None:
    from clickstream.cli import main

    assert main(["snippet", "--site", "my shop"]) == 2
    assert capsys.readouterr().err == (
        "clickstream: error: site id 'my shop': 1-64 characters of letters, digits, '.', '_', '-'\n"
    )


async def test_api_snippet_uses_the_request_url_and_the_site_policy(tmp_path) -> None:
    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Route

    from clickstream.settings import load
    from collector.snippet import api_snippet

    (tmp_path / "c.toml").write_text("[site.strict]\nrespect_dnt = true\n")
    app = Starlette(routes=[Route("/api/snippet", api_snippet)])
    app.state.settings = load(env={}, config_file=tmp_path / "c.toml")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://stats.example.com"
    ) as client:
        got = await client.get("/api/snippet", params={"site": "strict"})
        assert got.status_code == 200
        assert got.json() == snippet("strict", "http://stats.example.com", respect_dnt=True)
        other = await client.get("/api/snippet?site=shop&collector=https://c.example.com/cs")
        assert other.json() == snippet("shop", "https://c.example.com/cs")
        bad = await client.get("/api/snippet?site=")
        assert bad.status_code == 400
        assert bad.json() == {
            "error": "site id '': 1-64 characters of letters, digits, '.', '_', '-'"
        }


def test_cli_snippet_without_collector_prints_the_running_serves_own_snippet(
    tmp_path, capsys
) -> None:
    """`clickstream snippet --site ID` with the serve of the same --data running prints what
    its `GET /api/snippet?site=ID` returns (its URL, its per-site DNT policy and search
    parameters; not the default port); without a serve, HOST:PORT and the local settings."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from clickstream import running
    from clickstream.cli import main
    from clickstream.settings import load
    from collector.snippet import api_snippet
    from tests.js_snippet.recorder import Server

    (tmp_path / "serve.toml").write_text(
        '[site.docs]\nrespect_dnt = true\nsearch_params = "find"\n'
    )
    app = Starlette(routes=[Route("/api/snippet", api_snippet)])
    app.state.settings = load(env={}, config_file=tmp_path / "serve.toml")
    with Server(app) as serve:
        running.write(tmp_path, serve.url, "127.0.0.1:9092")
        try:
            assert main(["snippet", "--site", "docs", "--data", str(tmp_path)]) == 0
            out = capsys.readouterr().out
            assert main(["snippet", "--site", "my docs", "--data", str(tmp_path)]) == 2
            err = capsys.readouterr().err
        finally:
            running.remove(tmp_path)
    doc = snippet("docs", serve.url, respect_dnt=True, search_params="find")
    assert doc["js"] in out and doc["pixel"] in out
    assert (
        err
        == "clickstream: error: site id 'my docs': 1-64 characters of letters, digits, '.', '_', '-'\n"
    )
    assert not (tmp_path / running.NAME).exists()
    assert main(["snippet", "--site", "docs", "--data", str(tmp_path), "--port", "9001"]) == 0
    assert snippet("docs", "http://127.0.0.1:9001")["js"] in capsys.readouterr().out


def test_serve_announces_the_same_pixel_as_the_snippet(capsys) -> None:
    from clickstream.serve import _announce
    from clickstream.settings import load

    _announce(load(env={}, flags={"port": 8792}), "tok", False, "127.0.0.1:9092", True)
    out = capsys.readouterr().out
    assert f"  {snippet('SITE', 'http://127.0.0.1:8792')['pixel']}\n" in out


def test_the_snippet_carries_the_sites_own_search_parameters(tmp_path) -> None:
    # the app runs in a thread of its own: an async test collected after the Playwright
    # tests of this package would meet the sync API's running event loop
    import asyncio
    import threading

    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Route

    from clickstream.settings import load
    from collector.snippet import api_snippet

    assert (
        "data-search"
        not in snippet(
            "shop",
            "https://c.example.com",
            search_params="q,query,s,search,searchword,k,keyword,keywords",
        )["js"]
    )
    assert (
        ' data-search="find,q"></script>'
        in snippet("shop", "https://c.example.com", search_params=" find, q ")["js"]
    )
    (tmp_path / "c.toml").write_text('[site.docs]\nsearch_params = "find"\n')
    app = Starlette(routes=[Route("/api/snippet", api_snippet)])
    app.state.settings = load(env={}, config_file=tmp_path / "c.toml")
    got: dict[str, dict[str, str]] = {}

    async def fetch() -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://c.example"
        ) as c:
            for site in ("docs", "shop"):
                got[site] = (await c.get("/api/snippet", params={"site": site})).json()

    thread = threading.Thread(target=lambda: asyncio.run(fetch()))
    thread.start()
    thread.join(30)
    assert got["docs"] == snippet("docs", "http://c.example", search_params="find")
    assert 'data-search="find"' in got["docs"]["js"] and "data-search" not in got["shop"]["js"]


def test_no_snippet_for_a_site_the_allow_list_leaves_out(capsys) -> None:
    from clickstream.cli import main

    assert (
        main(
            [
                "snippet",
                "--site",
                "blog",
                "--sites",
                "shop,docs",
                "--collector",
                "https://c.example",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err == (
        "clickstream: error: site id 'blog' is not in the `sites` allow list (docs, shop): "
        "the collector would drop its hits\n"
    )
    assert (
        main(
            [
                "snippet",
                "--site",
                "shop",
                "--sites",
                "shop,docs",
                "--collector",
                "https://c.example",
            ]
        )
        == 0
    )
