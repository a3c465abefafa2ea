"""Cursor values: their text form, the overlap arithmetic, and the bound a source is asked for."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from refresh.cursors import from_text, is_cursor_type, lower_bound, to_text
from refresh.sources import Since


@pytest.mark.parametrize(
    ("value", "arrow_type"),
    [
        (42, pa.int32()),
        (-(2**62), pa.int64()),
        (date(2026, 12, 5), pa.date32()),
        (datetime(2026, 12, 5, 10, 0, 0, 123456), pa.timestamp("us")),
        (datetime(2026, 12, 5, 10, 0, tzinfo=UTC), pa.timestamp("us", tz="UTC")),
        ("a key", pa.string()),
    ],
)
def test_values_come_back_from_their_text(value: object, arrow_type: pa.DataType) -> None:
    assert from_text(to_text(value), arrow_type) == value


@pytest.mark.parametrize(
    ("arrow_type", "cursor"),
    [
        (pa.int16(), True),
        (pa.uint64(), True),
        (pa.date32(), True),
        (pa.timestamp("us", tz="UTC"), True),
        (pa.string(), False),
        (pa.float64(), False),
        (pa.decimal128(10, 2), False),
        (pa.time64("us"), False),
    ],
)
def test_cursors_are_integers_dates_and_timestamps(arrow_type: pa.DataType, cursor: bool) -> None:
    assert is_cursor_type(arrow_type) is cursor


def test_the_overlap_is_in_the_cursors_units_rounded_to_read_more() -> None:
    stamp = datetime(2026, 12, 5, 10, 0)
    assert lower_bound(stamp, 90) == stamp - timedelta(seconds=90)
    assert lower_bound(stamp, 0.5) == stamp - timedelta(milliseconds=500)
    assert lower_bound(date(2026, 12, 5), 1) == date(2026, 12, 4)
    assert lower_bound(date(2026, 12, 5), 0) == date(2026, 12, 5)
    assert lower_bound(100, 2.5) == 97
    assert lower_bound(100, 0) == 100


@pytest.mark.parametrize(
    ("value", "utc_offset", "literal"),
    [
        (7, False, "7"),
        (date(2026, 12, 5), False, "'2026-12-05'"),
        (datetime(2026, 12, 5, 10, 0, 1, 5), False, "'2026-12-05 10:00:01.000005'"),
        (
            datetime(2026, 12, 5, 12, 0, tzinfo=timezone(timedelta(hours=2))),
            False,
            "'2026-12-05 10:00:00'",
        ),
        (datetime(2026, 12, 5, 10, 0, tzinfo=UTC), True, "'2026-12-05 10:00:00+00'"),
        (datetime(2026, 12, 5, 10, 0), True, "'2026-12-05 10:00:00'"),
    ],
)
def test_a_source_is_asked_for_the_bound_as_an_sql_literal(
    value: object, utc_offset: bool, literal: str
) -> None:
    since = Since('we"ird', value)  # type: ignore[arg-type]
    quote = lambda name: '"' + name.replace('"', '""') + '"'  # noqa: E731
    assert since.condition(quote, utc_offset) == f'"we""ird" >= {literal}'
