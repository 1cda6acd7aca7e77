"""Shared by the importer tests (a plain module: tests/ has no packages)."""

from __future__ import annotations

from pathlib import Path

from importer.convert import Converter
from importer.formats import compile_format
from importer.run import iter_hits
from importer.stats import ImportStats

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE = DATA / "semicomplete_2015-05-17.log"

LINE = (
    '203.0.113.9 - - [10/Oct/2023:13:55:36 -0700] "GET /shop/item?id=7&utm_source=news HTTP/1.1" '
    '200 2326 "https://www.example.org/start" "Mozilla/5.0 (X11; Linux x86_64) Firefox/118.0"'
)


def run_import(
    paths: list[str], site: str = "s1", fmt: str = "combined", tracked=None, **conv_args: object
):
    """The whole pipeline without Kafka: (hits, stats)."""
    stats = ImportStats()
    conv = Converter(site, **conv_args)  # type: ignore[arg-type]
    hits = list(iter_hits(paths, compile_format(fmt), conv, stats, tracked))
    return hits, stats
