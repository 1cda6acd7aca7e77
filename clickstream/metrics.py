"""Process-wide counters, gauges and summaries, rendered as Prometheus text."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.gauges: dict[str, float] = {}
        self.summaries: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # count, sum

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
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

    def get(self, name: str, **labels: str) -> float:
        return self.counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str) -> float:
        return sum(v for (n, _), v in self.counters.items() if n == name)

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for (n, labels), v in list(self.counters.items()):
            if n == name:
                out[dict(labels).get(label, "")] = v
        return out

    def snapshot(self) -> dict[str, Any]:
        """Counters and summaries as JSON-able data (a collector worker's share)."""
        with self._lock:
            return {
                "counters": [[n, list(map(list, labels)), v] for (n, labels), v in self.counters.items()],
                "summaries": {k: list(v) for k, v in self.summaries.items()},
            }

    def merged(self, snapshots: list[dict[str, Any]]) -> Metrics:
        """This process's metrics plus other processes' snapshots (counters summed)."""
        out = Metrics()
        with self._lock:
            out.counters.update(self.counters)
            out.gauges.update(self.gauges)
            for k, v in self.summaries.items():
                out.summaries[k] = list(v)
        for snap in snapshots:
            for name, labels, value in snap.get("counters", []):
                out.counters[(name, tuple(tuple(x) for x in labels))] += value
            for name, (count, total) in snap.get("summaries", {}).items():
                out.summaries[name][0] += count
                out.summaries[name][1] += total
        return out

    def render(self) -> str:
        lines: list[str] = []
        seen: set[str] = set()
        for (name, labels), value in sorted(self.counters.items()):
            if name not in seen:
                lines.append(f"# TYPE clickstream_{name} counter")
                seen.add(name)
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels)
            lines.append(f"clickstream_{name}{{{lab}}} {value:g}" if lab else f"clickstream_{name} {value:g}")
        for name, value in sorted(self.gauges.items()):
            lines.append(f"# TYPE clickstream_{name} gauge")
            lines.append(f"clickstream_{name} {value:g}")
        for name, (count, total) in sorted(self.summaries.items()):
            lines.append(f"# TYPE clickstream_{name} summary")
            lines.append(f"clickstream_{name}_count {count:g}")
            lines.append(f"clickstream_{name}_sum {total:g}")
        return "\n".join(lines) + "\n"


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


METRICS = Metrics()
