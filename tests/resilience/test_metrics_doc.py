"""docs/metrics.md is generated from the catalog, and the code emits only catalogued names."""

from __future__ import annotations

import re
from pathlib import Path

from clickstream.metrics import BY_NAME, CATALOG, Metrics, markdown_table

ROOT = Path(__file__).resolve().parents[2]


def test_docs_table_is_generated_from_the_catalog() -> None:
    assert markdown_table() in (ROOT / "docs" / "metrics.md").read_text(), (
        "docs/metrics.md is stale: paste clickstream.metrics.markdown_table()"
    )


def test_every_metric_the_code_emits_is_catalogued_with_its_type() -> None:
    kinds = {"inc": "counter", "set": "gauge", "observe": "summary"}
    used: dict[str, str] = {}
    for package in ("clickstream", "collector", "sessionizer", "reports"):
        for path in (ROOT / package).rglob("*.py"):
            for call, name in re.findall(
                r'METRICS\.(inc|set|observe)\(\s*"([a-z_]+)"', path.read_text()
            ):
                used[name] = kinds[call]
    assert len(used) >= 20
    missing = sorted(n for n in used if n not in BY_NAME)
    assert missing == []
    assert {n: BY_NAME[n].type for n in used} == used
    assert all(m.name.endswith("_total") == (m.type == "counter") for m in CATALOG)


def test_render_prints_help_type_labels_and_summary_parts() -> None:
    m = Metrics()
    m.inc("hits_dropped_total", 2, reason='spool "full"')
    m.set("spool_bytes", 4096)
    m.observe("sessionizer_write_seconds", 0.25)
    m.observe("sessionizer_write_seconds", 0.75)
    assert m.render().splitlines() == [
        "# HELP clickstream_hits_dropped_total Hits refused, by reason (validation, privacy, spool_full).",
        "# TYPE clickstream_hits_dropped_total counter",
        'clickstream_hits_dropped_total{reason="spool \\"full\\""} 2',
        "# HELP clickstream_spool_bytes Bytes waiting in the spool directory.",
        "# TYPE clickstream_spool_bytes gauge",
        "clickstream_spool_bytes 4096",
        "# HELP clickstream_sessionizer_write_seconds Duration of one write of hits, sessions and identities to ClickHouse.",
        "# TYPE clickstream_sessionizer_write_seconds summary",
        "clickstream_sessionizer_write_seconds_count 2",
        "clickstream_sessionizer_write_seconds_sum 1",
        "clickstream_sessionizer_write_seconds_max 0.75",
    ]
