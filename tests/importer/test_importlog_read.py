from __future__ import annotations

import bz2
import gzip
import io
import sys

import pytest

from importer.read import RawLine, ReadProblem, SourceError, check_sources, read_lines

TEXT = b"first\nsecond\r\nthird\n"


def texts(items: list[RawLine | ReadProblem]) -> list[str]:
    return [i.text for i in items if isinstance(i, RawLine)]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("plain.log", TEXT),
        ("a.log.gz", gzip.compress(TEXT)),
        ("a.log.bz2", bz2.compress(TEXT)),
        ("misnamed.log", gzip.compress(TEXT)),  # detected by content, not by name
        ("two-members.gz", gzip.compress(b"first\n") + gzip.compress(b"second\r\nthird\n")),
    ],
)
def test_plain_gzip_bzip2_read_alike(write, name: str, content: bytes):
    items = list(read_lines([write(name, content)]))
    assert texts(items) == ["first", "second", "third"]
    assert [i.number for i in items] == [1, 2, 3]


def test_stdin_dash(monkeypatch):
    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(gzip.compress(TEXT))))
    )
    items = list(read_lines(["-"]))
    assert texts(items) == ["first", "second", "third"]
    assert {i.source for i in items} == {"<stdin>"}


def test_several_files_in_order_numbers_restart(write):
    a, b = write("a.log", b"a1\na2\n"), write("b.log.gz", gzip.compress(b"b1\n"))
    items = list(read_lines([a, b, a]))
    assert [(i.source, i.number, i.text) for i in items] == [
        (a, 1, "a1"),
        (a, 2, "a2"),
        (b, 1, "b1"),
        (a, 1, "a1"),
        (a, 2, "a2"),
    ]


def test_non_utf8_bytes_are_replaced_and_flagged(write):
    items = list(read_lines([write("x.log", b"ok\ncaf\xe9 \xff\xfe\nok\n")]))
    assert texts(items) == ["ok", "caf\ufffd \ufffd\ufffd", "ok"]
    assert [i.non_utf8 for i in items] == [False, True, False]


def test_too_long_line_is_skipped_to_its_end(write):
    items = list(read_lines([write("x.log", b"a\n" + b"x" * 5000 + b"\nb\n")], max_line=1000))
    assert [(i.text[:3], i.too_long) for i in items] == [("a", False), ("xxx", True), ("b", False)]
    assert len(items[1].text) == 200
    assert items[2].number == 3


def test_last_line_without_newline_is_flagged(write):
    items = list(read_lines([write("x.log", b"a\nb")]))
    assert [(i.text, i.no_newline) for i in items] == [("a", False), ("b", True)]


def test_truncated_gzip_gives_the_lines_before_and_a_problem(write):
    body = b"".join(b"line %05d\n" % n for n in range(20000))
    items = list(
        read_lines([write("cut.gz", gzip.compress(body)[:20000]), write("ok.log", b"next\n")])
    )
    problems = [i for i in items if isinstance(i, ReadProblem)]
    assert len(problems) == 1 and problems[0].message.startswith("EOFError")
    lines = [i for i in items if isinstance(i, RawLine)]
    assert lines[-1].text == "next"  # the next file is still read
    assert [i.text for i in lines[:-1]] == [f"line {n:05d}" for n in range(len(lines) - 1)]
    assert problems[0].number == len(lines) - 1


def test_damaged_gzip_header_is_a_problem_not_a_crash(write):
    items = list(read_lines([write("bad.gz", b"\x1f\x8b\x08garbage" * 10)]))
    assert len(items) == 1 and isinstance(items[0], ReadProblem)


def test_check_sources_names_the_bad_file(write, tmp_path):
    ok = write("ok.log", b"x\n")
    check_sources([ok, "-"])
    with pytest.raises(SourceError, match="cannot read .*missing.log: No such file"):
        check_sources([ok, str(tmp_path / "missing.log")])
    with pytest.raises(SourceError, match="only once"):
        check_sources(["-", "-"])
    with pytest.raises(SourceError, match="no input"):
        check_sources([])
