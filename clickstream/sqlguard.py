"""The statement check in front of ``/api/sql`` (ClickHouse's readonly=1 is the second lock)."""

from __future__ import annotations

import re

MAX_SQL = 20_000
READ_STARTS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS"})
# Table functions that reach files, other servers or programs: reads, but not ours to give.
FORBIDDEN_FUNCTIONS = frozenset(
    {
        "file",
        "url",
        "urlcluster",
        "s3",
        "s3cluster",
        "gcs",
        "hdfs",
        "hdfscluster",
        "remote",
        "remotesecure",
        "cluster",
        "clusterallreplicas",
        "mysql",
        "postgresql",
        "jdbc",
        "odbc",
        "executable",
        "input",
        "azureblobstorage",
        "azureblobstoragecluster",
        "mongodb",
        "redis",
        "sqlite",
        "deltalake",
        "iceberg",
        "hudi",
        "filecluster",
        "python",
        "ytsaurus",
        "arrowflight",
    }
)
_TOKEN = re.compile(
    r"""(?P<comment>--[^\n]*|/\*.*?\*/|\#[^\n]*)
      | (?P<string>'(?:[^'\\]|\\.|'')*')
      | (?P<ident>`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*")
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<semi>;)
      | (?P<other>\S)""",
    re.X | re.S,
)


class SQLRefused(ValueError):
    """The statement is not a single read; the message says why."""


def check_read_only(sql: str) -> str:
    """Return the statement (trailing ';' removed) if it is one read, else raise SQLRefused."""
    if len(sql) > MAX_SQL:
        raise SQLRefused(f"statement longer than {MAX_SQL} characters")
    words: list[str] = []
    statement_ended = False
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup
        if kind == "comment":
            continue
        if statement_ended:
            raise SQLRefused("only one statement is allowed")
        if kind == "semi":
            statement_ended = True
            continue
        if kind == "word":
            words.append(m.group().upper())
        elif kind == "other" and m.group() in "'`\"":
            raise SQLRefused("unterminated quote")
    if not words:
        raise SQLRefused("empty statement")
    if words[0] not in READ_STARTS:
        raise SQLRefused(
            f"only read statements are allowed (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN), not {words[0]}"
        )
    if "OUTFILE" in words:
        raise SQLRefused("INTO OUTFILE is not allowed")
    _check_functions(sql)
    return sql.strip().rstrip(";").strip()


def _check_functions(sql: str) -> None:
    for m in _TOKEN.finditer(sql):
        if m.lastgroup == "word" and m.group().lower() in FORBIDDEN_FUNCTIONS:
            rest = sql[m.end() :].lstrip()
            if rest.startswith("("):
                raise SQLRefused(f"table function {m.group()}() is not allowed")


def first_keyword(sql: str) -> str:
    """The statement's first word (comments skipped), upper-cased; '' if none."""
    for m in _TOKEN.finditer(sql):
        if m.lastgroup == "comment":
            continue
        return m.group().upper() if m.lastgroup == "word" else m.group()
    return ""
