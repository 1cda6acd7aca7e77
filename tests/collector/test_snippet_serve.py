"""The snippet of a running ``serve``: `/api/snippet` and `clickstream snippet` agree and
point at the public port, whichever serve process (main or collector worker) answers."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.conftest import ROOT, Served


def test_api_snippet_equals_the_cli_and_names_the_public_url(serve: Served) -> None:
    docs = [
        httpx.get(f"{serve.url}/api/snippet", params={"site": "shop"}, timeout=30).json()
        for _ in range(12)
    ]  # connections are spread over the main process and a worker
    assert all(d == docs[0] for d in docs)
    assert f'src="{serve.url}/p.gif?s=shop"' in docs[0]["pixel"]
    assert f'src="{serve.url}/t.js"' in docs[0]["js"]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "clickstream.cli",
            "snippet",
            "--site",
            "shop",
            "--data",
            str(serve.data),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    ).stdout
    assert docs[0]["js"] in out and docs[0]["pixel"] in out


def test_forwarded_requests_keep_the_browser_host(serve: Served) -> None:
    host = serve.url.removeprefix("http://").replace("127.0.0.1", "localhost")
    for _ in range(12):
        doc = httpx.get(f"http://{host}/api/snippet", params={"site": "shop"}, timeout=30).json()
        assert f'src="http://{host}/p.gif?s=shop"' in doc["pixel"]


def test_serve_prints_the_snippet_to_paste(serve: Served) -> None:
    from collector.snippet import snippet

    printed = serve.log.read_text()
    doc = snippet("SITE", serve.url)
    assert all(f"  {line}\n" in printed for line in doc["js"].splitlines())
    assert f"  {doc['pixel']}\n" in printed
    assert f"clickstream snippet --site ID --data {serve.data.resolve()}" in printed
