"""Strict conversion of source values into the Arrow schema a table was discovered with.

Every source ends here, so the rule "a value is never silently rounded or truncated" lives in one
place: a value that does not fit its column's Arrow type raises ``SourceError`` naming the column.

Two entry points:

- ``cast_batch`` for Arrow-native readers (ADBC for PostgreSQL, DuckDB): pyarrow's safe cast
  already refuses data loss (decimal rescaling, integer overflow, sub-unit timestamps); on top of
  it, temporal values outside PostgreSQL's own range are refused, because that is where
  PostgreSQL's and DuckDB's ``infinity`` land (DuckDB as the extreme int64/int32, ADBC even wraps
  them around), and Arrow has no infinity to carry them.
- ``rows_to_batch`` for DB-API rows (the generic SQLAlchemy source): pyarrow's Python
  conversion is lenient (``1.5`` into an int column becomes ``1``, an aware datetime into a
  naive column is shifted to UTC, a datetime into a date column loses its time), so each value
  is first normalised by a per-type function that accepts only lossless inputs. That per-value
  Python call is most of the cost, so a column whose values all have the one Python type its
  Arrow type takes exactly (what drivers usually return: ``int`` for integers, ``str`` for text,
  ``datetime`` for timestamps...) is converted by pyarrow at once, in C++; only a column with
  other values (strings in a SQLite date column, JSON as dicts...) goes value by value. SQLite's
  dynamic typing is why strings are accepted for temporal and decimal columns and floats for
  decimals.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from refresh.sources.base import Column, SourceError

# PostgreSQL's valid range (4714-11-24 BC to 294276 AD), in days and microseconds since the Unix
# epoch; int64 microseconds end before PostgreSQL's end, and that last value is DuckDB's infinity.
_DATE_RANGE = (-2_440_588, 2_145_042_905)
_TIMESTAMP_US_RANGE = (-210_866_803_200_000_000, 2**63 - 2)
# Nanoseconds only cover 1677-2262: just the infinities (+-(2**63 - 1), -2**63) are excluded.
_TIMESTAMP_NS_RANGE = (-(2**63) + 2, 2**63 - 2)

_EXCESS_DIGITS = re.compile(r"\.\d{6}(\d+)")


def column_error(column: str, problem: object) -> SourceError:
    return SourceError(f'column "{column}": {problem}')


def read_as_text(column: Column) -> bool:
    """Arrow-native readers get strings and decimals in the engine's own text form.

    Text is what every engine can give for any type (json, enums, intervals...), and for decimals
    it is both faster than the drivers' decimal decoding and checked digit by digit by
    ``cast_array``.
    """
    return pa.types.is_string(column.arrow_type) or pa.types.is_decimal(column.arrow_type)


def cast_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast a batch, column by position, to exactly ``schema``."""
    arrays = [
        cast_array(column, field.type, field.name)
        for column, field in zip(batch.columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def cast_array(array: pa.Array, target: pa.DataType, column: str) -> pa.Array:
    try:
        if pa.types.is_string(array.type) and pa.types.is_decimal(target):
            array = _decimal_text(array, target, column)
        if pa.types.is_string(array.type) and pa.types.is_time64(target):
            array = _time_text(array, target, column)
        if pa.types.is_string(array.type) and pa.types.is_timestamp(target) and target.tz:
            # Text without an offset in a UTC column is UTC: MySQL's TIMESTAMP in a UTC session.
            array = pc.cast(array, pa.timestamp(target.unit), safe=True)
        if array.type != target:
            array = pc.cast(array, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
        raise column_error(column, error) from None
    _check_temporal_range(array, column)
    return array


def _decimal_text(array: pa.Array, target: pa.DataType, column: str) -> pa.Array:
    """Guard pyarrow's text-to-decimal cast, which wraps around instead of failing on overflow.

    It accumulates every digit into the 128 (256) bit integer without an overflow check, so
    2**128 - 1 reads as -1 and passes the precision check. Text short enough to hold no more
    digits than the width can (38 or 76) is safe; longer text, rare, is checked digit by digit
    after dropping trailing fractional zeros (which the cast would accumulate too).
    """
    safe_length = 38 if pa.types.is_decimal128(target) else 76
    if (pc.max(pc.utf8_length(array)).as_py() or 0) <= safe_length:
        return array
    array = pc.replace_substring_regex(array, r"\.0+$|(\.[0-9]*[1-9])0+$", r"\1")
    integer_digits, scale = target.precision - target.scale, target.scale
    fits = pc.match_substring_regex(
        array, rf"^[+-]?0*[0-9]{{0,{integer_digits}}}(\.[0-9]{{0,{scale}}})?$"
    )
    if not pc.all(fits).as_py():
        raise column_error(column, f"a value does not fit in {target}")
    return array


def _time_text(array: pa.Array, target: pa.DataType, column: str) -> pa.Array:
    """Text of a time of day (MySQL's TIME, SQLite's TIME) to ``target``; pyarrow has no such cast.

    Parsed as a timestamp on 1970-01-01, which refuses what is not a time of day: MySQL's TIME is
    a duration (-838:59:59 to 838:59:59), and 25:00:00 or -00:00:01 fail rather than wrap.
    """
    unit = target.unit
    try:
        stamps = pc.cast(pc.binary_join_element_wise("1970-01-01 ", array, ""), pa.timestamp(unit))
    except pa.ArrowInvalid:
        bad = next(v for v in array.to_pylist() if v is not None and not _is_time_of_day(v))
        problem = f"expected a time of day (00:00 to 24:00), got {bad!r}"
        raise column_error(column, problem) from None
    return pc.cast(stamps.view(pa.int64()), target)


def _is_time_of_day(text: str) -> bool:
    try:
        pc.cast(pa.array([f"1970-01-01 {text}"]), pa.timestamp("ns"))
    except pa.ArrowInvalid:
        return False
    return True


def _check_temporal_range(array: pa.Array, column: str) -> None:
    kind = array.type
    if pa.types.is_date32(kind):
        low, high = _DATE_RANGE
    elif pa.types.is_timestamp(kind) and kind.unit == "us":
        low, high = _TIMESTAMP_US_RANGE
    elif pa.types.is_timestamp(kind) and kind.unit == "ns":
        low, high = _TIMESTAMP_NS_RANGE
    else:
        return
    if array.null_count == len(array):
        return
    integers = array.view(pa.int32() if pa.types.is_date32(kind) else pa.int64())
    bounds = pc.min_max(integers)
    if bounds["min"].as_py() < low or bounds["max"].as_py() > high:
        raise column_error(column, f"{kind} value out of range (infinity is not representable)")


def rows_to_batch(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Convert DB-API rows (tuples in ``schema`` order) into one batch of exactly ``schema``."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    arrays = []
    for values, field in zip(columns, schema, strict=True):
        try:
            array = _at_once(values, field.type)
            if array is None:
                normalise = python_normaliser(field.type)
                array = pa.array(
                    [None if v is None else normalise(v) for v in values], type=field.type
                )
        except (ValueError, TypeError, ArithmeticError, pa.ArrowException) as error:
            raise column_error(field.name, error) from None
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _at_once(values: Sequence[Any], target: pa.DataType) -> pa.Array | None:
    """``values`` converted by pyarrow in one call, when that is exact; otherwise None.

    Exact means every non-NULL value has the Python type pyarrow converts to ``target`` without
    leniency: ``type(v)`` is compared, so ``bool`` is not taken for ``int``, nor ``datetime``
    for ``date``. Timestamps are inferred (naive or aware as the values are), then cast: naive
    values in a UTC column are UTC, as ``_aware_timestamp`` says; aware values refuse a naive
    column.
    """
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if not kinds:
        return pa.nulls(len(values), target)
    if len(kinds) > 1:
        return None
    [kind] = kinds
    if pa.types.is_timestamp(target) and kind is datetime:
        inferred = pa.array(values)
        if inferred.type.tz is not None and not target.tz:
            return None  # the normaliser refuses it, naming the value
        return pc.cast(inferred, target, safe=True)
    if _EXACT.get(kind) is not None and _EXACT[kind](target):
        return pa.array(values, type=target)
    return None


# The Python types pyarrow converts exactly to the Arrow types they are checked against.
_EXACT: dict[type, Callable[[pa.DataType], bool]] = {
    int: pa.types.is_integer,
    float: pa.types.is_float64,
    str: pa.types.is_string,
    bytes: pa.types.is_binary,
    bool: pa.types.is_boolean,
    date: pa.types.is_date32,
}


def python_normaliser(target: pa.DataType) -> Callable[[Any], Any]:
    """The function that turns one non-NULL DB-API value into what ``pa.array`` takes losslessly."""
    if pa.types.is_integer(target):
        return _integer
    if pa.types.is_floating(target):
        return _float
    if pa.types.is_decimal(target):
        return _decimal
    if pa.types.is_boolean(target):
        return _boolean
    if pa.types.is_date32(target):
        return _date
    if pa.types.is_timestamp(target):
        return _aware_timestamp if target.tz else _naive_timestamp
    if pa.types.is_time64(target):
        return _time
    if pa.types.is_binary(target):
        return _binary
    if pa.types.is_string(target):
        return _string
    raise ValueError(f"no Python conversion to Arrow type {target}")


def _refuse(value: object, expected: str) -> ValueError:
    return ValueError(f"expected {expected}, got {type(value).__name__} {value!r}")


def _integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _refuse(value, "an integer")


def _float(value: object) -> float | int:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return value  # pyarrow refuses an int a double cannot hold exactly
    raise _refuse(value, "a number")


def _decimal(value: object) -> Decimal:
    # pyarrow then refuses a Decimal that needs rescaling or more precision than the column has.
    if isinstance(value, int) and not isinstance(value, bool):
        value = Decimal(value)
    elif isinstance(value, float):
        # repr is the shortest text that round-trips: SQLite's REAL 12345678901.23 stays that.
        value = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise _refuse(value, "a decimal number") from None
    elif not isinstance(value, Decimal):
        raise _refuse(value, "a decimal number")
    if not value.is_finite():
        raise _refuse(value, "a finite decimal number")
    # Trailing fractional zeros count as precision for pyarrow (1.5000...0 would not fit), so
    # drop them; by hand, as Decimal.normalize() rounds to the context's 28 digits.
    sign, digits, exponent = value.as_tuple()
    if exponent >= 0 or digits[-1] != 0:
        return value
    kept = len(digits)
    while kept > 1 and exponent < 0 and digits[kept - 1] == 0:
        kept, exponent = kept - 1, exponent + 1
    return Decimal((sign, digits[:kept], exponent))


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):  # SQLite and MySQL store booleans as 0/1
        return bool(value)
    raise _refuse(value, "a boolean")


def _date(value: object) -> date:
    if isinstance(value, str):
        value = date.fromisoformat(value.strip())
    if isinstance(value, datetime):
        if value.tzinfo is not None or value.time() != time(0):
            raise _refuse(value, "a date")
        return value.date()
    if isinstance(value, date):
        return value
    raise _refuse(value, "a date")


def _parse_timestamp(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(_whole_microseconds(value.strip()))
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise _refuse(value, "a timestamp")


def _naive_timestamp(value: object) -> datetime:
    parsed = _parse_timestamp(value)
    if parsed.tzinfo is not None:
        raise _refuse(value, "a timestamp without time zone")
    return parsed


def _aware_timestamp(value: object) -> datetime:
    """Naive values in a UTC column are UTC: MySQL's TIMESTAMP read with time_zone '+00:00'."""
    parsed = _parse_timestamp(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _time(value: object) -> time:
    if isinstance(value, str):
        value = time.fromisoformat(_whole_microseconds(value.strip()))
    if isinstance(value, timedelta):  # MySQL TIME is a duration, -838:59:59 to 838:59:59
        if not timedelta(0) <= value < timedelta(days=1):
            raise _refuse(value, "a time of day (00:00 to 24:00)")
        return (datetime.min + value).time()
    if isinstance(value, time) and value.tzinfo is None:
        return value
    raise _refuse(value, "a time of day")


def _whole_microseconds(text: str) -> str:
    """``fromisoformat`` drops digits beyond microseconds; refuse instead of truncating."""
    excess = _EXCESS_DIGITS.search(text)
    if excess and excess.group(1).strip("0"):
        raise ValueError(f"{text!r} has more precision than microseconds")
    return text


def _binary(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):  # SQLite lets text into a BLOB column
        return value.encode()
    raise _refuse(value, "bytes")


def _string(value: object) -> str:
    """Anything reads as text losslessly; structured values (JSON, arrays) as JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode()
    return str(value)
