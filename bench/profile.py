"""Sampling profile of a running server with py-spy (``pip install py-spy``), summarised.

Used by ``bench.pixel`` while wrk loads ``clickstream serve``: the summary names where the
process spends its samples (self time per function, and time under our own modules'
frames), so "profile before optimising" is part of every ``make bench``.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.common import which

OUR_CODE = ("clickstream/", "collector/", "sessionizer/", "reports/")


def available() -> str | None:
    """py-spy next to this interpreter (a venv not on PATH) or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else which("py-spy")


def start(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes] | None:
    """Begin sampling ``pid`` for ``seconds`` (non-blocking: the target is never paused)."""
    spy = available()
    if spy is None:
        return None
    cmd = [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
           "--format", "raw", "--nonblocking", "--subprocesses", "--output", str(out)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def summarize(raw: str, top: int = 12) -> list[str]:
    """Self time per function and inclusive time of our own frames, as percent of samples.

    ``raw`` is py-spy's collapsed-stack format: ``frame;frame;…;leaf count`` per line.
    """
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        self_time[frames[-1]] += n
        for frame in set(frames):
            if any(part in frame for part in OUR_CODE):
                inclusive[frame] += n
    if total == 0:
        return ["profile: no samples"]
    out = [f"profile: {total:,} samples; self time (top {top}):"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in self_time.most_common(top)]
    out.append(f"profile: time under our frames (top {top}):")
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return out


def finish(proc: subprocess.Popen[bytes] | None, out: Path, timeout: float) -> list[str]:
    if proc is None:
        return ["profile: py-spy not installed (pip install py-spy), no profile taken"]
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return ["profile: py-spy did not finish"]
    if not out.exists():
        return [f"profile: py-spy failed: {err.decode(errors='replace').strip()[-300:]}"]
    return summarize(out.read_text())
