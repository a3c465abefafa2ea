"""Arrow types as the strings the catalog stores and the API shows.

``str(pa.DataType)`` is already the readable, canonical spelling ("decimal128(12, 2)",
"timestamp[us, tz=UTC]"); this module is its inverse for the types sources produce, so a catalog
row is enough to rebuild the exact schema a refresh must write.
"""

from __future__ import annotations

import re

import pyarrow as pa

_SIMPLE: dict[str, pa.DataType] = {
    str(t): t
    for t in (
        pa.bool_(),
        pa.int8(),
        pa.int16(),
        pa.int32(),
        pa.int64(),
        pa.uint8(),
        pa.uint16(),
        pa.uint32(),
        pa.uint64(),
        pa.float16(),
        pa.float32(),
        pa.float64(),
        pa.string(),
        pa.large_string(),
        pa.binary(),
        pa.large_binary(),
        pa.date32(),
        pa.time64("us"),
        pa.null(),
    )
}
_DECIMAL = re.compile(r"decimal(128|256)\((\d+), (-?\d+)\)")
_TIMESTAMP = re.compile(r"timestamp\[(s|ms|us|ns)(?:, tz=([^\]]+))?\]")


def type_to_string(arrow_type: pa.DataType) -> str:
    text = str(arrow_type)
    if type_from_string(text) != arrow_type:
        raise ValueError(f"Arrow type {text} cannot be stored in the catalog")
    return text


def type_from_string(text: str) -> pa.DataType:
    if text in _SIMPLE:
        return _SIMPLE[text]
    if match := _DECIMAL.fullmatch(text):
        width, precision, scale = match.groups()
        factory = pa.decimal128 if width == "128" else pa.decimal256
        return factory(int(precision), int(scale))
    if match := _TIMESTAMP.fullmatch(text):
        unit, tz = match.groups()
        return pa.timestamp(unit, tz=tz)
    raise ValueError(f"unknown Arrow type in catalog: {text!r}")
