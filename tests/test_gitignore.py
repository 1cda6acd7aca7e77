"""The .gitignore keeps the tracker's npm install out of `git status`, linked or not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_js_snippet_node_modules_is_ignored(kind: str, tmp_path: Path) -> None:
    """`js-snippet/node_modules/` matched only a directory: a node_modules symlinked to a
    shared install showed up as an untracked file."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "js-snippet").mkdir(parents=True)
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    modules = repo / "js-snippet" / "node_modules"
    if kind == "symlink":
        (tmp_path / "shared").mkdir()
        (tmp_path / "shared" / "terser.js").write_text("")
        modules.symlink_to(tmp_path / "shared", target_is_directory=True)
    else:
        modules.mkdir()
        (modules / "terser.js").write_text("")
    subprocess.run([git, "init", "-q", str(repo)], check=True)
    status = subprocess.run(
        [git, "-C", str(repo), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "node_modules" not in status, status
    assert "?? .gitignore" in status  # the listing itself works
