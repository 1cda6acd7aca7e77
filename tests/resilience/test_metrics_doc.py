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
        "# HELP clickstream_sessionizer_write_seconds_max Largest observation of clickstream_sessionizer_write_seconds since the process started (with collector workers: the largest of theirs).",
        "# TYPE clickstream_sessionizer_write_seconds_max gauge",
        "clickstream_sessionizer_write_seconds_max 0.75",
    ]


# What the text exposition format (version 0.0.4) lets each family type print, as
# suffixes of the family's name (a summary: quantile samples under its own name).
SAMPLE_SUFFIXES = {"counter": ("",), "gauge": ("",), "summary": ("", "_sum", "_count")}
SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)")


def exposition_families(text: str) -> dict[str, tuple[str, list[str]]]:
    """Family name -> (type, sample names), failing on what a Prometheus parser would
    not read as a sample of a declared family."""
    families: dict[str, tuple[str, list[str]]] = {}
    helped: set[str] = set()
    current = ""
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helped and name not in families, line
            helped.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in families, f"family declared twice: {line}"
            assert kind in SAMPLE_SUFFIXES, line
            families[name] = (kind, [])
            current = name
        else:
            match = SAMPLE.fullmatch(line)
            assert match, f"not a sample: {line!r}"
            sample, labels, value = match.groups()
            float(value)
            assert current, f"sample before any # TYPE: {line}"
            kind, samples = families[current]
            suffix = sample[len(current) :] if sample.startswith(current) else None
            assert suffix in SAMPLE_SUFFIXES[kind], f"{sample} is not a sample of {kind} {current}"
            if kind == "summary" and suffix == "":
                assert labels and "quantile=" in labels, line
            samples.append(sample)
    assert helped <= set(families)
    return families


def test_render_is_valid_exposition_format_with_the_peak_as_its_own_gauge() -> None:
    m = Metrics()
    m.inc("hits_accepted_total", source="pixel")
    m.inc("hits_accepted_total", 3, source="beacon")
    m.inc("hits_spooled_total")
    m.set("spool_bytes", 10)
    m.set("sessionizer_open_sessions", 2)
    for value in (3, 9, 4):
        m.observe("collector_commit_hits", value)
    m.observe("sessionizer_write_seconds", 0.5)
    worker = Metrics()
    worker.observe("collector_commit_hits", 12)
    text = m.merged([worker.snapshot()]).render()
    families = exposition_families(text)
    assert families == {
        "clickstream_hits_accepted_total": ("counter", ["clickstream_hits_accepted_total"] * 2),
        "clickstream_hits_spooled_total": ("counter", ["clickstream_hits_spooled_total"]),
        "clickstream_sessionizer_open_sessions": (
            "gauge",
            ["clickstream_sessionizer_open_sessions"],
        ),
        "clickstream_spool_bytes": ("gauge", ["clickstream_spool_bytes"]),
        "clickstream_collector_commit_hits": (
            "summary",
            ["clickstream_collector_commit_hits_count", "clickstream_collector_commit_hits_sum"],
        ),
        "clickstream_collector_commit_hits_max": (
            "gauge",
            ["clickstream_collector_commit_hits_max"],
        ),
        "clickstream_sessionizer_write_seconds": (
            "summary",
            [
                "clickstream_sessionizer_write_seconds_count",
                "clickstream_sessionizer_write_seconds_sum",
            ],
        ),
        "clickstream_sessionizer_write_seconds_max": (
            "gauge",
            ["clickstream_sessionizer_write_seconds_max"],
        ),
    }
    assert "clickstream_collector_commit_hits_max 12" in text.splitlines()
