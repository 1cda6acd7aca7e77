"""/api/sql is read-only twice over: the statement check and ClickHouse's readonly=1."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream import warehouse
from tests.privacy.conftest import ADMIN, READER, bearer, client, make_app

REFUSED = [
    ("INSERT INTO {db}.hits (site) VALUES ('x')", "only read statements"),
    ("ALTER TABLE {db}.hits DELETE WHERE 1", "only read statements"),
    ("ALTER TABLE {db}.hits UPDATE site = 'x' WHERE 1", "only read statements"),
    ("DROP TABLE {db}.hits", "only read statements"),
    ("TRUNCATE TABLE {db}.hits", "only read statements"),
    ("SYSTEM DROP MARK CACHE", "only read statements"),
    ("OPTIMIZE TABLE {db}.hits FINAL", "only read statements"),
    ("SET readonly = 0", "only read statements"),
    ("SELECT 1; DROP TABLE {db}.hits", "only one statement"),
    ("SELECT 1;\nINSERT INTO {db}.hits (site) VALUES ('x')", "only one statement"),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function file()"),
    ("SELECT * FROM url('http://127.0.0.1:1/', 'CSV', 'a String')", "table function url()"),
    ("SELECT * FROM remote('127.0.0.1', system.one)", "table function remote()"),
    ("SELECT * FROM s3('http://127.0.0.1:1/b/k', 'CSV')", "table function s3()"),
    ("SELECT * FROM executable('sh', 'CSV', 'a String')", "table function executable()"),
    ("SELECT * FROM mysql('127.0.0.1', 'd', 't', 'u', 'p')", "table function mysql()"),
    ("SELECT * FROM python('print(1)')", "table function python()"),
    ("WITH x AS (SELECT 1) SELECT * FROM FILE ('/etc/passwd')", "table function FILE()"),
    ("SELECT 1 INTO OUTFILE '/tmp/x.csv'", "INTO OUTFILE"),
    ("SELECT 'unterminated", "unterminated quote"),
    ("", "empty statement"),
    ("-- only a comment", "empty statement"),
]


@pytest.mark.parametrize(("statement", "message"), REFUSED)
async def test_writes_and_escapes_are_refused(
    tmp_path: Path, ch, database: str, statement: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    app = make_app(tmp_path, database=database)
    app.app.state.warehouse = ch
    async with client(app.app) as c:
        r = await c.post("/api/sql", content=statement.format(db=database), headers=bearer(ADMIN))
    assert r.status_code == 400 and message in r.json()["error"]
    assert warehouse.read_query(ch, f"EXISTS TABLE {database}.hits").rows == [[1]]


async def test_clickhouse_readonly_is_the_second_lock(tmp_path: Path, ch, database: str) -> None:  # type: ignore[no-untyped-def]
    app = make_app(tmp_path, database=database)
    app.app.state.warehouse = ch
    async with client(app.app) as c:
        ok = await c.post(
            "/api/sql",
            content=f"SELECT count() AS n FROM {database}.hits FINAL;",
            headers=bearer(ADMIN),
        )
        assert ok.json() == {"columns": ["n"], "rows": [[0]]}
        # passes the statement check, refused by ClickHouse itself
        r = await c.post(
            "/api/sql", content="SELECT 1 SETTINGS readonly = 0", headers=bearer(ADMIN)
        )
        assert r.status_code == 400 and "readonly" in r.json()["error"].lower()
        r = await c.post(
            "/api/sql", content="SELECT 1 /* ; DROP TABLE x */ -- ; DROP", headers=bearer(ADMIN)
        )
        assert r.json()["rows"] == [[1]]
        assert (
            await c.post("/api/sql", content="SELECT 1", headers=bearer(READER))
        ).status_code == 403
        assert (
            await c.post("/api/sql", content="SELECT " + "1+" * 40_000 + "1", headers=bearer(ADMIN))
        ).status_code == 413
