"""Reading log files: plain, .gz, .bz2 (by content, not only by name), stdin ``-``.

:func:`read_lines` yields one :class:`RawLine` per line of every file in turn.  It never
raises on content: bytes that are not UTF-8 are decoded with ``errors="replace"`` and
flagged, a line longer than ``max_line`` bytes is skipped to its end and flagged, a last
line without a newline is flagged as possibly truncated, and a damaged compressed
stream ends that file with a :class:`ReadProblem` (the other files are still read).
"""

from __future__ import annotations

import bz2
import gzip
import io
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

MAX_LINE = 64 * 1024  # bytes; a longer line is counted as too_long and not parsed
_CHUNK = 1024 * 1024


class SourceError(OSError):
    """A file that cannot be opened; the message names it."""


@dataclass(slots=True)
class RawLine:
    source: str
    number: int  # 1-based line number in its file
    text: str  # without the line ending; for a too-long line, its first 200 characters
    non_utf8: bool = False
    too_long: bool = False
    no_newline: bool = False  # last line of a file without "\n" (maybe truncated)


@dataclass(slots=True)
class ReadProblem:
    source: str
    number: int  # lines read before the problem
    message: str


def check_sources(paths: list[str]) -> None:
    """Fail early, with the file's name, when an input cannot be opened."""
    if not paths:
        raise SourceError("no input file given (use - for stdin)")
    if paths.count("-") > 1:
        raise SourceError("stdin (-) can be given only once")
    for path in paths:
        if path == "-":
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None


def decompressed(raw: BinaryIO) -> BinaryIO:
    """``raw`` itself, or a gzip/bzip2 reader over it when its first bytes say so."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[type-var]
    magic = buffered.peek(3)[:3]
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if magic == b"BZh":
        return bz2.BZ2File(buffered, mode="rb")  # type: ignore[return-value]
    return buffered


def _lines_of(path: str, max_line: int) -> Iterator[RawLine | ReadProblem]:
    if path == "-":
        yield from _lines_of_stream(sys.stdin.buffer, "<stdin>", max_line)
    else:
        with open(path, "rb") as raw:
            yield from _lines_of_stream(raw, path, max_line)


def _lines_of_stream(source: BinaryIO, name: str, max_line: int) -> Iterator[RawLine | ReadProblem]:
    number = 0
    try:
        stream = decompressed(source)
        while True:
            try:
                data = stream.readline(max_line + 1)
            except (OSError, EOFError, zlib.error) as exc:
                yield ReadProblem(name, number, f"{type(exc).__name__}: {exc}")
                return
            if not data:
                return
            number += 1
            too_long = len(data) > max_line and not data.endswith(b"\n")
            if too_long:
                head = data[:200]
                try:
                    while data and not data.endswith(b"\n"):  # skip to the end of the line
                        data = stream.readline(_CHUNK)
                except (OSError, EOFError, zlib.error) as exc:
                    yield ReadProblem(name, number, f"{type(exc).__name__}: {exc}")
                    return
                yield RawLine(name, number, head.decode("utf-8", "replace"), too_long=True)
                continue
            no_newline = not data.endswith(b"\n")
            data = data.rstrip(b"\r\n")
            if number == 1 and data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
                data = data[3:]
            try:
                yield RawLine(name, number, data.decode("utf-8"), no_newline=no_newline)
            except UnicodeDecodeError:
                yield RawLine(
                    name,
                    number,
                    data.decode("utf-8", "replace"),
                    non_utf8=True,
                    no_newline=no_newline,
                )
    except (OSError, EOFError, zlib.error) as exc:  # a damaged compressed header
        yield ReadProblem(name, number, f"{type(exc).__name__}: {exc}")


def read_lines(paths: list[str], max_line: int = MAX_LINE) -> Iterator[RawLine | ReadProblem]:
    """Every line of every file, in order; problems are yielded, not raised."""
    for path in paths:
        try:
            yield from _lines_of(path, max_line)
        except OSError as exc:
            yield ReadProblem(path, 0, f"cannot read: {exc.strerror or exc}")
