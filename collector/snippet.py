"""The HTML webmasters paste: the JS loader, the bare pixel, and the email-open pixel.

``snippet(site, collector_url)`` is what `clickstream snippet` (:func:`add_parser`), the
dashboard's Install page and ``GET /api/snippet`` (:func:`api_snippet`) return.  The loader defines a queue stub so that
``cs(...)`` calls made before ``/t.js`` arrives are kept (with their own time), then
loads the tracker asynchronously, configured by ``data-*`` attributes.

The pixels carry ``referrerpolicy="no-referrer-when-downgrade"``: by default a
cross-origin image request's ``Referer`` holds only the site's origin, and the
collector falls back to ``Referer`` for the page URL when ``u`` is absent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from html import escape
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clickstream import running
from clickstream.hit import MAX_ID, MAX_PROP_VALUE
from collector.validate import SITE_RE

MAX_SITE = 64
MAX_COLLECTOR_URL = 500
# the collector's limits (collector/validate.py) for the email pixel's params
_EMAIL_LIMITS = {"u": 2000, "uid": MAX_ID, "utm_source": 200, "utm_campaign": 200}
# ESP merge tags (``{{email}}``, ``*|EMAIL|*``) must survive URL encoding
_MERGE_TAG_SAFE = "{}|*"

STUB = "window.cs=window.cs||function(){(cs.q=cs.q||[]).push([Date.now(),arguments])};"
_PIXEL_ATTRS = (
    'width="1" height="1" alt="" referrerpolicy="no-referrer-when-downgrade" '
    'style="position:absolute;border:0"'
)


class SnippetError(ValueError):
    """A site id or collector URL that cannot go into a snippet; the message says why."""


def check_site(site: str) -> str:
    if not isinstance(site, str) or not 0 < len(site) <= MAX_SITE or not SITE_RE.match(site):
        raise SnippetError(
            f"site id {site!r}: 1-{MAX_SITE} characters of letters, digits, '.', '_', '-'"
        )
    return site


def check_collector_url(url: str) -> str:
    """An absolute http(s) URL without query or fragment; returned without a trailing '/'."""
    if not isinstance(url, str) or len(url) > MAX_COLLECTOR_URL:
        raise SnippetError(
            f"collector URL must be a string of at most {MAX_COLLECTOR_URL} characters"
        )
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SnippetError(f"collector URL {url!r}: an absolute http:// or https:// URL expected")
    if parts.query or parts.fragment or any(c in url for c in "\"'<> \t\r\n"):
        raise SnippetError(f"collector URL {url!r}: no query, fragment, quotes or spaces")
    return url.strip().rstrip("/")


# the tracker's own list (js-snippet/src/tracker.js) when the snippet names none
DEFAULT_SEARCH_PARAMS = "q,query,s,search,searchword,k,keyword,keywords"


def snippet(
    site: str, collector_url: str, *, respect_dnt: bool = False, search_params: str = ""
) -> dict[str, str]:
    """{"js": loader + <noscript> pixel, "pixel": the bare <img> web bug} for one site.

    ``search_params`` (the site's setting) goes into ``data-search`` when it is not the
    tracker's default list, so that the tracker marks the same URLs as searches as the
    sessionizer does."""
    site = check_site(site)
    base = check_collector_url(collector_url)
    pixel_src = f"{base}/p.gif?{urlencode({'s': site})}"
    dnt = ' data-respect-dnt="true"' if respect_dnt else ""
    names = ",".join(p.strip() for p in search_params.split(",") if p.strip())
    if names and names != DEFAULT_SEARCH_PARAMS:
        dnt += f' data-search="{escape(names)}"'

    js = (
        f"<script>{STUB}</script>\n"
        f'<script async src="{escape(base)}/t.js" data-site="{escape(site)}" '
        f'data-collector="{escape(base)}"{dnt}></script>\n'
        f'<noscript><img src="{escape(pixel_src)}" {_PIXEL_ATTRS}></noscript>'
    )
    return {"js": js, "pixel": f'<img src="{escape(pixel_src)}" {_PIXEL_ATTRS}>'}


def email_pixel_url(
    site: str,
    collector_url: str,
    campaign: str,
    *,
    source: str = "newsletter",
    uid: str = "",
    url: str = "",
    props: dict[str, str] | None = None,
) -> str:
    """The GET /p.gif URL of an email-open hit: ``e=email_open`` with campaign params.

    ``uid`` is usually the ESP's merge tag for the recipient's CRM id (``{{crm_id}}``);
    ``props`` become ``x_*`` params.  Merge-tag characters ``{ } | *`` are kept as is.
    An email client sends no page URL (the collector needs one): ``u`` is ``url``, by
    default ``<collector>/email/<campaign>``.
    """
    base = check_collector_url(collector_url)
    params = {
        "s": check_site(site),
        "e": "email_open",
        "u": url or f"{base}/email/{quote(campaign, safe='')}",
        "utm_source": source,
        "utm_medium": "email",
        "utm_campaign": campaign,
    }
    if uid:
        params["uid"] = uid
    for key, value in (props or {}).items():
        params[f"x_{key}"] = value
    for key, value in params.items():
        limit = _EMAIL_LIMITS.get(key, MAX_PROP_VALUE)
        if not isinstance(value, str) or not value or len(value) > limit:
            raise SnippetError(
                f"email pixel {key}: a non-empty string of at most {limit} characters"
            )
    if not params["u"].startswith(("http://", "https://")):
        raise SnippetError(f"email pixel url {url!r}: an absolute http(s) URL expected")
    if len(props or {}) > 30:
        raise SnippetError("email pixel: at most 30 props")
    query = urlencode(params, safe=_MERGE_TAG_SAFE)
    return f"{base}/p.gif?{query}"


def email_pixel(
    site: str,
    collector_url: str,
    campaign: str,
    *,
    source: str = "newsletter",
    uid: str = "",
    url: str = "",
    props: dict[str, str] | None = None,
) -> str:
    """The <img> tag to put at the end of an email body (see :func:`email_pixel_url`)."""
    src = email_pixel_url(
        site, collector_url, campaign, source=source, uid=uid, url=url, props=props
    )
    return f'<img src="{escape(src)}" width="1" height="1" alt="" style="border:0">'


def site_policy(settings: Any, site: str) -> dict[str, Any]:
    """The site's settings a snippet carries: DNT/GPC policy and search parameters.
    A site outside a set `sites` allow list gets no snippet: the collector drops its hits."""
    allow = settings.site_allow_list
    if allow and SITE_RE.match(site or "") and site not in allow:
        raise SnippetError(
            f"site id {site!r} is not in the `sites` allow list ({', '.join(sorted(allow))}): "
            "the collector would drop its hits"
        )
    s = settings.for_site(site) if SITE_RE.match(site or "") else settings
    return {"respect_dnt": bool(s.respect_dnt), "search_params": str(s.search_params)}


async def api_snippet(request: Request) -> Response:
    """GET /api/snippet?site=ID[&collector=URL] -> {"js": ..., "pixel": ...}."""
    site = request.query_params.get("site", "")
    base = request.query_params.get("collector") or str(request.base_url)
    settings = request.app.state.settings
    try:
        doc = snippet(site, base, **site_policy(settings, site))
    except SnippetError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(doc)


def add_parser(sub: Any, add_setting_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    """`clickstream snippet --site ID [--collector URL] [--email-campaign NAME]`."""
    p = sub.add_parser("snippet", help="print the JS snippet and the pixel tag to paste")
    p.add_argument("--site", required=True, help="site id, e.g. shop")
    p.add_argument(
        "--collector",
        help="collector base URL (default: the `clickstream serve` running with --data, whose own "
        "snippet is printed; else http://HOST:PORT)",
    )
    p.add_argument("--email-campaign", help="also print an email-open pixel for this campaign")
    add_setting_flags(p)
    p.set_defaults(handler=cmd_snippet)


def _from_serve(base: str, site: str, settings: Any) -> dict[str, str] | None:
    """GET <serve>/api/snippet?site=ID, or None when it does not answer with a snippet;
    a 400 (bad or unlisted site id) is raised as the SnippetError it names."""
    import json
    import urllib.error
    import urllib.request

    token = settings.api_token
    path = settings.data_dir / "api_token"
    if not token and path.exists():
        token = path.read_text().strip()
    req = urllib.request.Request(
        f"{base}/api/snippet?{urlencode({'site': site})}",
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 400:
            try:
                raise SnippetError(str(json.loads(exc.read()).get("error", ""))) from None
            except (ValueError, AttributeError):
                return None
        return None
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(doc, dict)
        and isinstance(doc.get("js"), str)
        and isinstance(doc.get("pixel"), str)
    )
    return doc if ok else None


def cmd_snippet(args: argparse.Namespace, settings: Any) -> int:
    serve = None if args.collector else running.find(settings.data_dir)
    base = args.collector or (
        str(serve["url"]) if serve else f"http://{settings.host}:{settings.port}"
    )
    try:
        # the running serve's own answer: its per-site settings (DNT policy, search
        # parameters) are the ones its collector applies, whatever this shell's config says
        doc = (_from_serve(base, args.site, settings) if serve else None) or snippet(
            args.site, base, **site_policy(settings, args.site)
        )
        email = email_pixel(args.site, base, args.email_campaign) if args.email_campaign else ""
    except SnippetError as exc:
        print(f"clickstream: error: {exc}", file=sys.stderr)
        return 2
    print("<!-- JS snippet: paste into every page's <head> -->")
    print(doc["js"])
    print("<!-- or the bare pixel (no JS) -->")
    print(doc["pixel"])
    if email:
        print("<!-- email-open pixel: at the end of the email body -->")
        print(email)
    return 0
