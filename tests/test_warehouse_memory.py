"""chDB's memory cap (``chdb_max_memory``): a big GROUP BY spills to disk instead of failing.

Each case runs in its own process: chDB allows one engine per process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# a GROUP BY of 10M keys holding strings: about 0.5 GB of states, over a 256 MB cap
SCRIPT = """
import sys
from clickstream import warehouse
c = warehouse.connect("chdb://" + sys.argv[1], max_memory="256M")
if sys.argv[2] == "no-spill":
    c.command("SET max_bytes_before_external_group_by = 0")
settings = c.query(
    "SELECT getSetting('max_memory_usage'), getSetting('max_bytes_before_external_group_by'),"
    " getSetting('max_bytes_before_external_sort')"
).result_rows[0]
print(*settings)
sql = (
    "SELECT count() FROM (SELECT number % 10000000 AS k,"
    " groupArray(toString(number)) AS a FROM numbers(40000000) GROUP BY k)"
)
print(*warehouse.read_query(c, sql).rows[0])
"""


def run(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / mode), mode],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_group_by_over_half_the_cap_spills_and_answers(tmp_path: Path) -> None:
    out = run(tmp_path, "spill")
    assert out.returncode == 0, out.stderr[-2000:]
    settings, result = out.stdout.split("\n")[:2]
    assert settings.split() == [str(256 << 20), str(128 << 20), str(128 << 20)]
    assert result.split() == ["10000000"]


def test_without_the_spill_the_same_query_fails_on_the_cap(tmp_path: Path) -> None:
    """The control: the query above really is over the cap."""
    out = run(tmp_path, "no-spill")
    assert out.returncode != 0
    assert "MEMORY_LIMIT_EXCEEDED" in out.stderr
