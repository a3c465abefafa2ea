"""The strict conversions every source relies on: lossless or a SourceError naming the column."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from datetime import time as clock
from decimal import Decimal

import pyarrow as pa
import pytest

from refresh.sources.base import SourceError
from refresh.sources.convert import cast_batch, rows_to_batch

PLUS_TWO = timezone(timedelta(hours=2))


def one_column(arrow_type: pa.DataType, values: list[object]) -> list[object]:
    schema = pa.schema([pa.field("c", arrow_type)])
    batch = rows_to_batch([(v,) for v in values], schema)
    assert batch.schema == schema
    return batch.column(0).to_pylist()


@pytest.mark.parametrize(
    ("arrow_type", "values", "expected"),
    [
        (pa.int64(), [1, None, -(2**63)], [1, None, -(2**63)]),
        (pa.uint64(), [2**64 - 1], [2**64 - 1]),
        (pa.float64(), [1, 0.1], [1.0, 0.1]),
        (
            pa.decimal128(12, 2),
            [Decimal("1.20"), 3, 0.1, " 2.5 ", Decimal("1.500")],
            [Decimal("1.20"), Decimal("3.00"), Decimal("0.10"), Decimal("2.50"), Decimal("1.50")],
        ),
        (pa.bool_(), [True, 0, 1], [True, False, True]),
        (
            pa.date32(),
            [date(2024, 2, 29), "2024-02-29", datetime(2024, 2, 29)],
            [date(2024, 2, 29)] * 3,
        ),
        (
            pa.timestamp("us"),
            ["2024-01-01 12:00:00.5", date(2024, 1, 1)],
            [datetime(2024, 1, 1, 12, 0, 0, 500000), datetime(2024, 1, 1)],
        ),
        (
            pa.timestamp("us", tz="UTC"),
            [datetime(2024, 1, 1, 12, tzinfo=PLUS_TWO), datetime(2024, 1, 1, 12)],
            [datetime(2024, 1, 1, 10, tzinfo=UTC), datetime(2024, 1, 1, 12, tzinfo=UTC)],
        ),
        (
            pa.time64("us"),
            [clock(1, 2, 3, 4), timedelta(hours=23, microseconds=1), "12:00"],
            [clock(1, 2, 3, 4), clock(23, 0, 0, 1), clock(12)],
        ),
        (pa.binary(), [b"\x00", bytearray(b"\x01"), "é"], [b"\x00", b"\x01", "é".encode()]),
        (
            pa.string(),
            ["a\nb", {"k": ["é", 1]}, [1, 2], b"bytes", 5, Decimal("1.50")],
            ["a\nb", '{"k": ["é", 1]}', "[1, 2]", "bytes", "5", "1.50"],
        ),
    ],
)
def test_lossless_values_convert(
    arrow_type: pa.DataType, values: list[object], expected: list[object]
) -> None:
    assert one_column(arrow_type, values) == expected


@pytest.mark.parametrize(
    ("arrow_type", "value", "problem"),
    [
        (pa.int32(), 1.5, "expected an integer"),
        (pa.int32(), True, "expected an integer"),
        (pa.int8(), 300, "too large"),
        (pa.uint8(), -1, "negative"),
        (pa.float64(), 2**60 + 1, "exactly representable"),
        (pa.decimal128(12, 2), Decimal("1.234"), "data loss"),
        (pa.decimal128(12, 2), 0.125, "data loss"),
        (pa.decimal128(12, 2), Decimal("12345678901.5"), "precision"),
        (pa.decimal128(12, 2), float("nan"), "finite"),
        (pa.decimal128(12, 2), "abc", "expected a decimal number"),
        (pa.bool_(), 2, "expected a boolean"),
        (pa.date32(), datetime(2024, 1, 1, 12), "expected a date"),
        (pa.timestamp("us"), datetime(2024, 1, 1, tzinfo=UTC), "without time zone"),
        (pa.timestamp("us"), "2024-01-01 00:00:00.0000001", "more precision"),
        (pa.timestamp("us"), 1704067200, "expected a timestamp"),
        (pa.time64("us"), timedelta(hours=24), "time of day"),
        (pa.time64("us"), timedelta(seconds=-1), "time of day"),
        (pa.time64("us"), clock(12, tzinfo=UTC), "time of day"),
        (pa.string(), b"\xff", "utf-8"),
        (pa.binary(), 5, "expected bytes"),
    ],
)
def test_lossy_values_fail_naming_the_column(
    arrow_type: pa.DataType, value: object, problem: str
) -> None:
    with pytest.raises(SourceError, match=f'^column "c": .*{problem}'):
        one_column(arrow_type, [None, value])


def test_no_rows_give_an_empty_batch_of_the_schema() -> None:
    schema = pa.schema([pa.field("a", pa.int32()), pa.field("b", pa.string())])

    assert rows_to_batch([], schema).schema == schema


def cast_one(array: pa.Array, target: pa.DataType) -> list[object]:
    schema = pa.schema([pa.field("c", target)])
    batch = cast_batch(pa.record_batch([array], names=["x"]), schema)
    assert batch.schema == schema
    return batch.column(0).to_pylist()


def test_cast_batch_is_exact() -> None:
    assert cast_one(pa.array(["1.5", None, "-0.01"]), pa.decimal128(5, 2)) == [
        Decimal("1.50"),
        None,
        Decimal("-0.01"),
    ]
    assert cast_one(pa.array([1, None], pa.int16()), pa.int64()) == [1, None]
    assert cast_one(pa.array([None, None], pa.timestamp("us")), pa.timestamp("us")) == [None] * 2


@pytest.mark.parametrize(
    ("array", "target", "problem"),
    [
        (pa.array(["1.234"]), pa.decimal128(5, 2), "data loss"),
        (
            pa.array([None, "340282366920938463463374607431768211455"]),
            pa.decimal128(38, 0),
            "does not fit",
        ),
        (pa.array(["1" + "0" * 40]), pa.decimal128(38, 9), "does not fit"),
        (pa.array([2**40], pa.int64()), pa.int32(), "not in range"),
        (pa.array([1_500], pa.timestamp("ns")), pa.timestamp("us"), "would lose data"),
        (pa.array([2**63 - 1], pa.timestamp("us")), pa.timestamp("us"), "out of range"),
        (pa.array([-(2**31) + 10957], pa.date32()), pa.date32(), "out of range"),
    ],
)
def test_cast_batch_refuses_what_does_not_fit(
    array: pa.Array, target: pa.DataType, problem: str
) -> None:
    with pytest.raises(SourceError, match=f'^column "c": .*{problem}'):
        cast_one(array, target)
