"""``python -m bench`` (``make bench``): every bench module in turn, then a summary.

A bench module is any ``bench/*.py`` with a top-level ``def main(...)``; ``pixel`` runs
first, the others in name order. Each runs in its own subprocess with a time cap, so a
crash or a hang in one never stops the rest. Lines a bench prints with
:func:`bench.common.figure` (``[figure] name = value unit``) are repeated in the summary.

    python -m bench [NAME ...] [--timeout SECONDS] [--list]
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import fnmatch
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import FIGURE_PREFIX

FIRST = ("pixel",)
NOT_BENCHES = {"__init__", "__main__", "common"}
DEFAULT_TIMEOUT = 1200.0  # per bench; BENCH_TIMEOUT=seconds or --timeout overrides


def discover(directory: Path) -> list[str]:
    """Module names in ``directory`` defining a top-level ``main``; FIRST ones first."""
    found = []
    for path in sorted(directory.glob("*.py")):
        if path.stem in NOT_BENCHES or path.stem.startswith("_"):
            continue
        try:
            tree = ast.parse(path.read_text(), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, OSError):
            found.append(path.stem)  # let the run report the error
            continue
        if any(
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "main"
            for node in tree.body
        ):
            found.append(path.stem)
    return sorted(found, key=lambda n: (FIRST.index(n) if n in FIRST else len(FIRST), n))


@dataclass
class Outcome:
    name: str
    status: str  # "ok", "failed (exit N)", "timed out after Ns"
    seconds: float
    lines: list[str] = field(default_factory=list)

    @property
    def figures(self) -> list[str]:
        return [ln for ln in self.lines if ln.startswith(FIGURE_PREFIX)]


# main() is called without arguments, or with an empty argv list when it requires one.
_LAUNCH = (
    "import asyncio, inspect, sys\n"
    "from {package}.{name} import main\n"
    "params = inspect.signature(main).parameters.values()\n"
    "needs_argv = any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,"
    " p.POSITIONAL_OR_KEYWORD) for p in params)\n"
    "rc = main([]) if needs_argv else main()\n"
    "if inspect.isawaitable(rc):\n"
    "    rc = asyncio.run(rc)\n"
    "sys.exit(rc if isinstance(rc, int) else 0)\n"
)


def run_one(name: str, timeout: float, package: str = "bench", cwd: Path | None = None) -> Outcome:
    """Run ``package.name.main()`` in a subprocess, echoing its output as it comes."""
    if not 1 <= timeout <= 24 * 3600:
        raise ValueError(f"timeout must be 1..86400 seconds, got {timeout:g}")
    started = time.monotonic()
    cmd = [sys.executable, "-u", "-c", _LAUNCH.format(package=package, name=name)]
    proc = subprocess.Popen(
        cmd, cwd=cwd or Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f"  {line}", end="", flush=True)
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout)
        status = "ok" if rc == 0 else f"failed (exit {rc})"
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        status = f"timed out after {timeout:g}s"
    reader.join(5)
    return Outcome(name, status, time.monotonic() - started, lines)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def summary(outcomes: list[Outcome]) -> list[str]:
    out = ["", "=" * 72, "bench summary", "=" * 72]
    for o in outcomes:
        out.append(f"{o.name:<16} {o.status:<24} {o.seconds:7.1f} s")
        shown = o.figures or [f"(no {FIGURE_PREFIX} lines) {ln}" for ln in o.lines[-5:]]
        out.extend(f"    {ln}" for ln in shown)
    return out


# The performance targets of the issues: (what, figure name glob, "min"|"max", bound).
TARGETS = (
    ("pixel: serve / nginx empty_gif (1 worker)", "pixel.ratio.serve/nginx1", "min", 0.25),
    ("pixel: collector full path / bare ASGI", "pixel.ratio.collector/bare", "min", 0.8),
    ("hit -> queryable p99 at steady load, s", "soak_queryable_p99", "max", 5.0),
    ("report on 10M hits, 90 days, s", "reports.*.90d", "max", 1.0),
    ("report on 10M hits, 30 days, s", "reports.*.30d", "max", 1.0),
    ("report on 100M hits, 90 days, s (see note)", "reports_100m.*", "max", 5.0),
)


def figure_values(lines: list[str]) -> dict[str, float]:
    """``[figure] name = 1,234.5 unit`` lines to {name: value}."""
    out: dict[str, float] = {}
    for line in lines:
        head, _, rest = line.removeprefix(FIGURE_PREFIX).partition(" = ")
        try:
            out[head.strip()] = float(rest.split()[0].replace(",", ""))
        except (ValueError, IndexError):
            continue
    return out


def targets(outcomes: list[Outcome]) -> list[str]:
    """Every target with its measured figure(s) and verdict (n/a when its bench did not run)."""
    values = figure_values([ln for o in outcomes for ln in o.figures])
    out = ["", "targets", f"  {'target':<44} {'bound':>8}  measured"]
    for label, pattern, kind, bound in TARGETS:
        hits = {k: v for k, v in values.items() if fnmatch.fnmatchcase(k, pattern)}
        sign = ">=" if kind == "min" else "<"
        if not hits:
            out.append(
                f"  {label:<44} {sign + ' ' + format(bound, 'g'):>8}  n/a (not measured in this run)"
            )
            continue
        for name, value in sorted(hits.items()):
            met = value >= bound if kind == "min" else value < bound
            out.append(
                f"  {label:<44} {sign + ' ' + format(bound, 'g'):>8}  {value:g}"
                f"  {'MET' if met else 'MISSED'}  ({name})"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    available = discover(here)
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run every benchmark.")
    parser.add_argument(
        "names", nargs="*", help=f"benches to run (default all: {' '.join(available)})"
    )
    parser.add_argument(
        "--timeout",
        default=os.environ.get("BENCH_TIMEOUT") or str(DEFAULT_TIMEOUT),
        help=f"cap per bench in seconds (env BENCH_TIMEOUT; default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--list", action="store_true", help="list the benches and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(available))
        return 0
    unknown = [n for n in args.names if n not in available]
    if unknown:
        parser.error(f"unknown bench {', '.join(unknown)}; available: {', '.join(available)}")
    try:
        timeout = float(args.timeout)
    except ValueError:
        timeout = 0.0
    if not 1 <= timeout <= 24 * 3600:
        parser.error(f"--timeout / BENCH_TIMEOUT must be 1..86400 seconds, got {args.timeout!r}")
    outcomes = []
    for name in args.names or available:
        print(f"\n### bench {name} (cap {timeout:g} s)", flush=True)
        outcomes.append(run_one(name, timeout))
    for line in summary(outcomes) + targets(outcomes):
        print(line)
    return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
