"""Where a running ``clickstream serve`` is: ``<data>/serve.json``, written at start.

Other commands on the same machine (``sql``, ``report``, ``import-log``) use it when no
``--url``/``--kafka``/``--clickhouse`` is given, so they reach the serve's API and its
embedded broker instead of opening its chDB files (one engine per process).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

NAME = "serve.json"


def write(data_dir: Path, url: str, kafka: str) -> Path:
    path = data_dir / NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "kafka": kafka, "pid": os.getpid()}))
    tmp.replace(path)
    return path


def remove(data_dir: Path) -> None:
    path = data_dir / NAME
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def find(data_dir: Path) -> dict[str, Any] | None:
    """The running serve's {"url", "kafka", "pid"}, or None (none, or its process is gone)."""
    try:
        info = json.loads((data_dir / NAME).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if isinstance(info, dict) else None
