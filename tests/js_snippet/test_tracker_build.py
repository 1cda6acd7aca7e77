"""The committed collector/static/t.js is exactly a fresh build of js-snippet/src, in budget."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "js-snippet"
BUILT = ROOT / "collector" / "static" / "t.js"
BUDGET = 2048


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: install Node.js 20 (Debian package `nodejs`) to build t.js")
    if not (JS / "node_modules" / "terser").is_dir():
        pytest.fail("js-snippet/node_modules is missing: run `make js-deps` (npm ci in js-snippet)")
    return node


def _build(tmp_path: Path, source: str | None = None) -> subprocess.CompletedProcess[str]:
    node = _node()
    if source is None:
        return subprocess.run(
            [node, str(JS / "build.mjs"), "--out", str(tmp_path / "t.js")],
            capture_output=True,
            text=True,
            timeout=120,
        )
    # a copy of the project with another source, same build script and node_modules
    work = tmp_path / "js-snippet"
    (work / "src").mkdir(parents=True)
    shutil.copy(JS / "build.mjs", work)
    shutil.copy(JS / "package.json", work)
    (work / "node_modules").symlink_to(JS / "node_modules")
    (work / "src" / "tracker.js").write_text(source)
    return subprocess.run(
        [node, str(work / "build.mjs"), "--out", str(tmp_path / "t.js")],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_committed_build_matches_a_fresh_build(tmp_path: Path) -> None:
    result = _build(tmp_path)
    assert result.returncode == 0, result.stderr
    fresh = (tmp_path / "t.js").read_bytes()
    assert fresh == BUILT.read_bytes(), (
        "collector/static/t.js differs from js-snippet/src: run `cd js-snippet && npm run build`"
    )
    size = len(gzip.compress(fresh, compresslevel=9))
    match = re.fullmatch(
        r"t\.js (\S+): (\d+) bytes, (\d+) bytes gzipped \(budget 2048\)\n", result.stdout
    )
    assert match, result.stdout
    assert int(match[2]) == len(fresh)
    assert abs(int(match[3]) - size) <= 20  # node's zlib and Python's gzip headers differ
    assert int(match[3]) <= BUDGET
    assert fresh.startswith(f"/*! clickstream t.js {match[1]} */".encode())


def test_build_fails_over_the_size_budget(tmp_path: Path) -> None:
    source = (JS / "src" / "tracker.js").read_text()
    # 3 KB of incompressible-ish strings that the minifier must keep
    noise = ",".join(f'"{i * 7919 % 100003:x}{i * 104729 % 999983:x}"' for i in range(400))
    result = _build(tmp_path, source + f"\nwindow.noise = [{noise}];\n")
    assert result.returncode == 1
    assert re.search(r"t\.js is \d+ bytes over the 2048-byte gzip budget", result.stderr)
    assert not (tmp_path / "t.js").exists()


def test_build_fails_on_a_syntax_error(tmp_path: Path) -> None:
    result = _build(tmp_path, "(function () { var = ; })();\n")
    assert result.returncode != 0
    assert "SyntaxError" in result.stderr or "Unexpected token" in result.stderr
    assert not (tmp_path / "t.js").exists()
