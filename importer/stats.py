"""What an import did: lines read, hits imported, lines skipped by reason with examples."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

EXAMPLES_PER_REASON = 3
NON_UTF8 = "non_utf8"  # examples of lines with bytes that are not UTF-8 (imported, not skipped)
EXAMPLE_CHARS = 160

# Every reason a line can be skipped for, in the order the summary prints them.
REASONS = {
    "malformed": "does not match the log format",
    "truncated": "last line of a file without a newline, does not match the format",
    "too_long": "longer than the line limit",
    "bad_time": "time missing or out of range",
    "bad_request": 'request is not "METHOD target PROTOCOL"',
    "bad_target": "request target is not a path or an http(s) URL",
    "url_too_long": "page URL longer than 2000 characters",
    "method": "method not imported (default: GET only)",
    "status": "status not imported (default: 2xx and 304; redirects and errors are not page views)",
    "static": "static asset (css, js, images, fonts, ...)",
    "tracked": "page view the pixel already recorded (--skip-tracked)",
    "read_error": "file could not be read to its end",
}


def printable(text: str, limit: int = EXAMPLE_CHARS) -> str:
    """A safe one-line rendering of hostile input: control characters escaped, cut."""
    cut = text[:limit]
    if not cut.isprintable():
        cut = cut.encode("unicode_escape", "backslashreplace").decode("ascii")[:limit]
    return cut + ("…" if len(text) > limit else "")


@dataclass
class ImportStats:
    lines: int = 0
    imported: int = 0
    non_utf8: int = 0  # lines with bytes that are not UTF-8 (decoded with U+FFFD, still imported)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    # files (in reading order) with a line the format was tried on / with one it matched
    files_tried: dict[str, None] = field(default_factory=dict)
    files_matched: set[str] = field(default_factory=set)

    def files_unmatched(self) -> list[str]:
        """Files with lines of which none matched the format: a wrong ``--format``."""
        return [f for f in self.files_tried if f not in self.files_matched]

    def note_non_utf8(self, where: str, text: str) -> None:
        self.non_utf8 += 1
        kept = self.examples.setdefault(NON_UTF8, [])
        if len(kept) < EXAMPLES_PER_REASON:
            kept.append(f"{where}: {printable(text)}")

    def skip(self, reason: str, where: str, text: str) -> None:
        self.skipped[reason] += 1
        kept = self.examples.setdefault(reason, [])
        if len(kept) < EXAMPLES_PER_REASON:
            kept.append(f"{where}: {printable(text)}")

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def summary(self, seconds: float | None = None) -> str:
        rate = f" in {seconds:.1f} s ({self.lines / seconds:,.0f} lines/s)" if seconds else ""
        out = [
            f"lines read: {self.lines:,}{rate}",
            f"imported:   {self.imported:,}",
            f"skipped:    {self.skipped_total:,}",
        ]
        order = [r for r in REASONS if r in self.skipped] + sorted(set(self.skipped) - set(REASONS))
        for reason in order:
            out.append(f"  {reason}: {self.skipped[reason]:,}  ({REASONS.get(reason, '')})")
            out.extend(f"    e.g. {ex}" for ex in self.examples.get(reason, []))
        if self.non_utf8:
            out.append(f"non-UTF-8 lines (decoded with U+FFFD, not skipped): {self.non_utf8:,}")
            out.extend(f"    e.g. {ex}" for ex in self.examples.get(NON_UTF8, []))
        return "\n".join(out)

    def as_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "imported": self.imported,
            "non_utf8": self.non_utf8,
            "skipped": dict(self.skipped),
            "examples": self.examples,
        }
