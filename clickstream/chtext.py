r"""Arrays, tuples and maps written as ClickHouse writes them in its text formats.

``clickstream sql --format csv|table`` prints ``['a','b']``, ``[1,2]``, ``(1,'a')`` and
``{'k':1}``, the text of ``clickhouse-client``'s CSV, TSV and Pretty formats, not Python's
``['a', 'b']``.  Inside one, a string is quoted with ``'`` and escaped as ClickHouse
escapes it, a NULL is ``NULL``, a float is its shortest form (``2``, ``1e-7``), a date
or time is quoted.  Without the column types a named tuple (a ``dict`` from
clickhouse-connect) prints as a map, and a tuple that came through the JSON API as an
array.  At the top level (:func:`cell`, :func:`csv_line`) numbers, booleans and times are
written the same way, strings as they are; a CSV field is quoted only when it must be
(ClickHouse quotes every string: a CSV reader reads the same values) and a NULL is empty
(ClickHouse: ``\N``).
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\0": "\\0",
}
_ESCAPE_TABLE = str.maketrans(_ESCAPES)


def is_composite(value: Any) -> bool:
    return isinstance(value, list | tuple | dict)


def literal(value: Any) -> str:
    """``value`` as an element of a ClickHouse array, tuple or map."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, list):
        return "[" + ",".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ",".join(literal(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ",".join(f"{literal(k)}:{literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bytes):
        return quoted(value.decode("utf-8", "replace"))
    if isinstance(value, dt.datetime):
        return quoted(datetime_text(value))
    return quoted(str(value))  # str, date, UUID, IP address, enum name


def quoted(text: str) -> str:
    return "'" + text.translate(_ESCAPE_TABLE) + "'"


def float_text(value: float) -> str:
    """Shortest round-trip digits, in decimal notation for 1e-6 <= |x| < 1e21 and
    ``1.5e-7`` style outside (ClickHouse's double-conversion settings)."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    point = len(digits) + exponent  # digits before the decimal point
    minus = "-" if sign else ""
    if -6 <= point - 1 < 21:
        if point <= 0:
            return f"{minus}0.{'0' * -point}{text}"
        if point >= len(text):
            return f"{minus}{text}{'0' * (point - len(text))}"
        return f"{minus}{text[:point]}.{text[point:]}"
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{minus}{mantissa}e{point - 1}"


def decimal_text(value: Decimal) -> str:
    """Without trailing zeros, as ClickHouse prints a Decimal by default (``1.50`` → ``1.5``)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def datetime_text(value: dt.datetime) -> str:
    """``YYYY-MM-DD hh:mm:ss`` in the value's own zone, with milliseconds or microseconds
    when it has them (the DateTime64 scale itself is not known here)."""
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        micros = f"{value.microsecond:06d}"
        text += "." + (micros[:3] if micros.endswith("000") else micros)
    return text


def cell(value: Any) -> str:
    """A top-level value as ClickHouse's CSV and TSV write it, unquoted (NULL: empty)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dt.datetime):
        return datetime_text(value)
    if isinstance(value, bool | int | float | Decimal | list | tuple | dict):
        return literal(value)
    return str(value)  # date, UUID, IP address


def csv_line(values: Any) -> str:
    """One CSV row: an array, tuple or map always in double quotes (``"['a']"``), like
    ClickHouse's CSV; another field only when it holds a comma, quote or line break."""
    out = []
    for value in values:
        text = cell(value)
        if is_composite(value) or any(c in text for c in ',"\r\n'):
            text = '"' + text.replace('"', '""') + '"'
        out.append(text)
    return ",".join(out) + "\n"
