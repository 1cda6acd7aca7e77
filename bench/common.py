"""Shared bench helpers: free ports, child processes, HTTP readiness, wrk, figure lines.

A bench prints one ``[figure]`` line per measurement (``figure()``) so that
``python -m bench`` can quote every figure in its closing summary.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURE_PREFIX = "[figure]"


class BenchError(RuntimeError):
    """A bench could not run (missing tool, server did not start); the message says why."""


def figure(name: str, value: float, unit: str, note: str = "", digits: int = 2) -> str:
    """Print and return one machine-readable figure line."""
    shown = f"{value:,.{max(0, min(digits, 9))}f}"
    line = f"{FIGURE_PREFIX} {name} = {shown} {unit}{'  (' + note + ')' if note else ''}"
    print(line, flush=True)
    return line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def which(name: str) -> str | None:
    """A tool on PATH or in the sbin directories that a non-login PATH may lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def ensure_debian_packages(tools: dict[str, str]) -> dict[str, str]:
    """Paths of the tools; installs their Debian packages (``tool -> package``) if missing."""
    missing = [pkg for tool, pkg in tools.items() if which(tool) is None]
    if missing:
        print(f"installing Debian packages: {' '.join(missing)}", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "-qq", *missing]
        if os.geteuid() != 0:
            cmd = ["sudo", *cmd]
        if subprocess.run(cmd, env=env, check=False).returncode != 0:
            subprocess.run([*cmd[: cmd.index("install")], "update", "-qq"], env=env, check=False)
            subprocess.run(cmd, env=env, check=False)
    paths = {tool: which(tool) for tool in tools}
    absent = [tool for tool, path in paths.items() if path is None]
    if absent:
        raise BenchError(
            f"cannot install {', '.join(absent)} (apt-get install {' '.join(missing)})"
        )
    return {tool: str(path) for tool, path in paths.items()}


@contextlib.contextmanager
def process(
    args: Sequence[str], log: Path, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own process group, stopped (SIGTERM, then SIGKILL) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(args), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip
        try:
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes


def wait_http(
    url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0
) -> Response:
    """The first answer from ``url``; fails with the child's log tail if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode}: {tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return Response(r.status, r.headers.get("Content-Type", ""), r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, e.headers.get("Content-Type", ""), e.read())
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError(f"no answer from {url} within {timeout:g}s: {tail(log)}") from None
            time.sleep(0.2)


def tail(log: Path, lines: int = 8) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    requests: int
    errors: int  # socket errors (connect, read, write, timeout) plus non-2xx/3xx answers
    p50_ms: float
    p99_ms: float
    non_2xx: int = 0
    timeouts: int = 0  # requests wrk gave up on after its 2 s timeout


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise BenchError(f"unreadable wrk latency {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """The figures of ``wrk --latency`` output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ", output, re.M)
    if not rps or not total:
        raise BenchError(f"unreadable wrk output: {output.strip()[-300:]!r}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non2xx_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    non2xx = int(non2xx_match.group(1)) if non2xx_match else 0
    errors += non2xx
    timeouts = re.search(r"Socket errors:.*timeout (\d+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        requests=int(total.group(1)),
        errors=errors,
        p50_ms=_ms(p50.group(1)) if p50 else 0.0,
        p99_ms=_ms(p99.group(1)) if p99 else 0.0,
        non_2xx=non2xx,
        timeouts=int(timeouts.group(1)) if timeouts else 0,
    )


def run_wrk(
    wrk: str, url: str, seconds: int = 10, threads: int = 2, connections: int = 50
) -> WrkResult:
    if not 1 <= seconds <= 600 or not 1 <= threads <= 64 or not threads <= connections <= 10_000:
        raise BenchError(f"bad wrk parameters: {seconds}s, {threads} threads, {connections} conns")
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return parse_wrk(done.stdout)


def python() -> str:
    return sys.executable


def serve_command(port: int, data: Path, *extra: str) -> list[str]:
    """The argv of ``clickstream serve`` on ``port`` with its data in ``data``."""
    return [
        python(),
        "-m",
        "clickstream.cli",
        "serve",
        "--port",
        str(port),
        "--data",
        str(data),
        *extra,
    ]
