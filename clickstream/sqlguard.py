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
    if _has_insert(words):
        raise SQLRefused(
            "only read statements are allowed (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN), not INSERT"
        )
    if "OUTFILE" in words:
        raise SQLRefused("INTO OUTFILE is not allowed")
    fmt = _format_clause(sql)
    if fmt:
        raise SQLRefused(
            f"a FORMAT clause is not allowed (FORMAT {fmt}): the answer is JSON"
            " (the CLI's --format prints table, json or csv)"
        )
    _check_functions(sql)
    return sql.strip().rstrip(";").strip()


def is_read(sql: str) -> bool:
    """Whether the statement may go to the read path: it starts (past comments and
    opening parentheses) with a read keyword and holds no ``INSERT INTO``.

    ``WITH … INSERT INTO …`` starts with a read keyword, but clickhouse-connect sends an
    insert's settings with ``SET`` and restores them afterwards: ``SET readonly = 1`` then
    refuses every later ``SET`` (the restore included), and on chDB the one shared
    session stays read-only for the sessionizer too."""
    words = _words(sql)
    return bool(words) and words[0] in READ_STARTS and not _has_insert(words)


def _words(sql: str) -> list[str]:
    return [m.group().upper() for m in _TOKEN.finditer(sql) if m.lastgroup == "word"]


def _has_insert(words: list[str]) -> bool:
    return any(a == "INSERT" and b == "INTO" for a, b in zip(words, words[1:], strict=False))


def _format_clause(sql: str) -> str:
    """The format of a trailing ``FORMAT X`` clause ('' if none; ``format(…)`` is a function)."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(sql) if m.lastgroup != "comment"]
    for i, (kind, text) in enumerate(tokens[:-1]):
        if kind == "word" and text.upper() == "FORMAT" and tokens[i + 1][0] == "word":
            rest = tokens[i + 2 :]
            if not rest or rest[0][0] == "semi" or rest[0][1].upper() == "SETTINGS":
                return tokens[i + 1][1]
    return ""


def _check_functions(sql: str) -> None:
    for m in _TOKEN.finditer(sql):
        if m.lastgroup == "word" and m.group().lower() in FORBIDDEN_FUNCTIONS:
            rest = sql[m.end() :].lstrip()
            if rest.startswith("("):
                raise SQLRefused(f"table function {m.group()}() is not allowed")
