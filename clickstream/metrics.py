"""Process-wide counters, gauges and summaries, rendered as Prometheus text.

Every metric is declared once in :data:`CATALOG` (name, type, labels, help);
``docs/metrics.md`` is generated from it (a test keeps them equal) and
:meth:`Metrics.render` prints its ``# HELP`` lines.  Names are prefixed
``clickstream_`` on output.  Each process (each uvicorn worker) has its own values.

A summary prints ``_count`` and ``_sum`` (no quantiles), the only samples the text
format allows in a summary family; its largest observation is a family of its own,
the gauge ``<name>_max`` (:func:`peak_help`), as Micrometer exposes timers' maxima.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    type: str  # counter | gauge | summary
    help: str
    labels: tuple[str, ...] = ()


M = Metric
CATALOG: tuple[Metric, ...] = (
    # collector
    M(
        "hits_accepted_total",
        "counter",
        "Hits answered and durably accepted (Kafka or spool).",
        ("source",),
    ),
    M(
        "hits_dropped_total",
        "counter",
        "Hits refused, by reason (validation, privacy, spool_full).",
        ("reason",),
    ),
    M(
        "beacon_rejected_total",
        "counter",
        "POST /collect bodies answered 400, by first error.",
        ("reason",),
    ),
    M(
        "bad_cookie_total",
        "counter",
        "Malformed _cs_vid cookies ignored (a new visitor id is set).",
    ),
    M("redirects_refused_total", "counter", "GET /r targets refused (not allow-listed)."),
    M(
        "http_slow_clients_total",
        "counter",
        "Connections closed because a request was not received within 10 s.",
    ),
    M(
        "http_requests_refused_total",
        "counter",
        "Requests answered the fixed 400 before the app: target_too_long, headers_too_large, malformed.",
        ("reason",),
    ),
    M("hits_produced_total", "counter", "Hits acknowledged by Kafka on the direct path."),
    M(
        "produce_errors_total",
        "counter",
        "Direct produce attempts that failed or exceeded produce_timeout_s.",
        ("reason",),
    ),
    M(
        "hits_spooled_total",
        "counter",
        "Hits appended to the local spool (Kafka away, slow, or spool not yet drained).",
    ),
    M("hits_replayed_total", "counter", "Spooled hits acknowledged by Kafka on replay."),
    M(
        "hits_delivered_late_total",
        "counter",
        "Spooled hits not replayed because their timed-out send was acknowledged after all.",
    ),
    M(
        "spool_corrupt_lines_total",
        "counter",
        "Spool lines that were not a Hit (torn write) and were skipped.",
    ),
    M("spool_bytes", "gauge", "Bytes waiting in the spool directory."),
    M("spool_full", "gauge", "1 while the spool is at spool_max_bytes (hits are being dropped)."),
    # sessionizer
    M("sessionizer_hits_total", "counter", "Hits decoded and folded into sessions."),
    M(
        "sessionizer_poison_records_total",
        "counter",
        "Undecodable Kafka records sent to the dead-letter topic, by reason.",
        ("reason",),
    ),
    M(
        "sessionizer_dead_letter_errors_total",
        "counter",
        "Poison records that could not be written to the dead-letter topic (only logged).",
    ),
    M(
        "sessionizer_consumer_lag",
        "gauge",
        "Records in the topic not yet consumed (sum over assigned partitions).",
    ),
    M("sessionizer_open_sessions", "gauge", "Sessions open in memory."),
    M("sessions_written_total", "counter", "Closed sessions written to ClickHouse."),
    M(
        "collector_commit_hits",
        "summary",
        "Hits per group commit of a collector (one Kafka batch per partition, one acknowledgement wait).",
    ),
    M(
        "sessionizer_write_seconds",
        "summary",
        "Duration of one write of hits, sessions and identities to ClickHouse.",
    ),
    M(
        "sessionizer_read_errors_total",
        "counter",
        "Failed history reads from ClickHouse (retried with backoff; nothing folded meanwhile).",
    ),
    M(
        "sessionizer_write_errors_total",
        "counter",
        "Failed ClickHouse writes (retried with backoff; no offset committed).",
    ),
    M(
        "sessionizer_commit_errors_total",
        "counter",
        "Offset commits that failed or timed out (Kafka away or rebalancing; the rows were written, the offsets are committed next time).",
    ),
    M(
        "sessionizer_dropped_total",
        "counter",
        "Hits dropped by an enrichment step (e.g. bots with bots=drop), by reason.",
        ("reason",),
    ),
    M(
        "sessionizer_sessions_capped",
        "gauge",
        "Sessions split because they reached max_session_hits or max_session_hours (since start).",
    ),
    M(
        "sessionizer_amended_visitors_total",
        "counter",
        "Visitors whose written sessions were reloaded and rewritten because of a late hit.",
    ),
    M(
        "sessionizer_hits_flushed",
        "gauge",
        "Hits folded by this process whose rows (open sessions provisionally) are written.",
    ),
    M(
        "sessionizer_assigned_partitions",
        "gauge",
        "Partitions of the hits topic assigned to this sessionizer.",
    ),
    M(
        "erased_sessions_dropped_total",
        "counter",
        "Sessions of erased visitors dropped by the writer (a replay does not bring them back).",
    ),
    # API
    M(
        "auth_refused_total",
        "counter",
        "Requests refused by the token/login check, by reason.",
        ("reason",),
    ),
    M("logins_total", "counter", "Dashboard login attempts, by result.", ("result",)),
)
del M
BY_NAME = {m.name: m for m in CATALOG}
PEAK_SUFFIX = "_max"


def peak_help(summary: Metric) -> str:
    """HELP of the gauge family that carries a summary's largest observation."""
    return (
        f"Largest observation of clickstream_{summary.name} since the process started"
        " (with collector workers: the largest of theirs)."
    )


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.gauges: dict[str, float] = {}
        self.summaries: dict[str, list[float]] = defaultdict(
            lambda: [0.0, 0.0, 0.0]
        )  # count, sum, max

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
        if len(labels) <= 1:  # the hot path: no sort for zero or one label
            key = (name, tuple(labels.items()))
        else:
            key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self.counters[key] += value

    def set(self, name: str, value: float) -> None:
        self.gauges[name] = value

    def observe(self, name: str, value: float) -> None:
        with self._lock:
            s = self.summaries[name]
            s[0] += 1
            s[1] += value
            s[2] = max(s[2], value)

    def get(self, name: str, **labels: str) -> float:
        return self.counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str) -> float:
        return sum(v for (n, _), v in list(self.counters.items()) if n == name)

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for (n, labels), v in list(self.counters.items()):
            if n == name:
                out[dict(labels).get(label, "")] = v
        return out

    def snapshot(self) -> dict[str, Any]:
        """Counters, gauges and summaries as JSON-able data (a collector worker's share)."""
        with self._lock:
            return {
                "counters": [
                    [n, [list(x) for x in labels], v] for (n, labels), v in self.counters.items()
                ],
                "gauges": dict(self.gauges),
                "summaries": {k: list(v) for k, v in self.summaries.items()},
            }

    def merged(self, snapshots: list[dict[str, Any]]) -> Metrics:
        """This process's metrics plus other processes' snapshots (summed; max of maxima)."""
        out = Metrics()
        for snap in [self.snapshot(), *snapshots]:
            for name, labels, value in snap.get("counters", []):
                out.counters[(name, tuple(tuple(x) for x in labels))] += value
            for name, value in snap.get("gauges", {}).items():
                out.gauges[name] = out.gauges.get(name, 0.0) + value
            for name, (count, total, peak) in snap.get("summaries", {}).items():
                s = out.summaries[name]
                s[0] += count
                s[1] += total
                s[2] = max(s[2], peak)
        return out

    def render(self) -> str:
        lines: list[str] = []
        seen: set[str] = set()

        def head(name: str, kind: str, help_text: str | None = None) -> None:
            if name in seen:
                return
            seen.add(name)
            meta = BY_NAME.get(name)
            if help_text is None and meta is not None:
                help_text = meta.help
            if help_text is not None:
                lines.append(f"# HELP clickstream_{name} {help_text}")
            lines.append(f"# TYPE clickstream_{name} {kind}")

        with self._lock:
            counters = sorted(self.counters.items())
            summaries = sorted((k, list(v)) for k, v in self.summaries.items())
        for (name, labels), value in counters:
            head(name, "counter")
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels)
            lines.append(
                f"clickstream_{name}{{{lab}}} {value:g}" if lab else f"clickstream_{name} {value:g}"
            )
        for name, value in sorted(self.gauges.items()):
            head(name, "gauge")
            lines.append(f"clickstream_{name} {value:g}")
        for name, (count, total, peak) in summaries:
            head(name, "summary")
            lines.append(f"clickstream_{name}_count {count:g}")
            lines.append(f"clickstream_{name}_sum {total:g}")
            meta = BY_NAME.get(name)
            head(name + PEAK_SUFFIX, "gauge", peak_help(meta) if meta is not None else None)
            lines.append(f"clickstream_{name}{PEAK_SUFFIX} {peak:g}")
        return "\n".join(lines) + "\n"


def markdown_table() -> str:
    """The table of docs/metrics.md, generated from CATALOG (a test keeps them equal)."""
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for m in CATALOG:
        labels = ", ".join(f"`{x}`" for x in m.labels)
        rows.append(f"| `clickstream_{m.name}` | {m.type} | {labels} | {m.help} |")
        if m.type == "summary":
            rows.append(f"| `clickstream_{m.name}{PEAK_SUFFIX}` | gauge |  | {peak_help(m)} |")
    return "\n".join(rows)


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


METRICS = Metrics()
