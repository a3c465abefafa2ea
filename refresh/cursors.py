"""Cursor values: which columns may be an incremental refresh's cursor, the text form of their
values (watermarks in manifests and the catalog, file statistics), and the overlap arithmetic.

A cursor is an integer, date or timestamp column. Its values are written as text so that the
catalog, the manifest and the API hold one spelling: an integer in decimal, a date or timestamp
in ISO 8601 (a time-zone-aware timestamp with its offset). The same spelling serves the file
statistics of a primary key column, which may also be a string.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pyarrow as pa

CursorValue = int | date | datetime


def is_cursor_type(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_date(arrow_type)
        or pa.types.is_timestamp(arrow_type)
    )


def has_text(arrow_type: pa.DataType) -> bool:
    """Whether values of the type have a text form here (for file statistics)."""
    return is_cursor_type(arrow_type) or pa.types.is_string(arrow_type)


def to_text(value: object) -> str:
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    return str(value)


def from_text(text: str, arrow_type: pa.DataType) -> object:
    """The value ``to_text`` wrote for a column of ``arrow_type``."""
    if pa.types.is_integer(arrow_type):
        return int(text)
    if pa.types.is_timestamp(arrow_type):
        return datetime.fromisoformat(text)
    if pa.types.is_date(arrow_type):
        return date.fromisoformat(text)
    return text


def lower_bound(watermark: CursorValue, overlap: float) -> CursorValue:
    """The lowest cursor value an incremental read asks for: ``overlap`` below the watermark, in
    the cursor's units (seconds for dates and timestamps), rounded so as to read more, not less.
    """
    if isinstance(watermark, datetime):
        return watermark - timedelta(seconds=overlap)
    if isinstance(watermark, date):
        return watermark - timedelta(days=math.ceil(overlap / 86_400))
    return watermark - math.ceil(overlap)
