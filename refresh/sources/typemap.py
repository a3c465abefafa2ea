"""Arrow types that several sources' type mappings share."""

from __future__ import annotations

import pyarrow as pa

# A decimal without declared precision (PostgreSQL ``numeric``, SQLite ``NUMERIC``, SQLAlchemy
# ``Numeric()``): 29 integer and 9 fractional digits. A value needing more fails its column rather
# than being rounded; the alternative, a string column, would lose the numeric type for every
# reader to save the rare table that stores more digits.
UNCONSTRAINED_DECIMAL = pa.decimal128(38, 9)


def decimal_type(precision: int, scale: int) -> pa.DataType:
    """``decimal(p, s)`` exactly: decimal128 up to 38 digits, decimal256 beyond (up to 76).

    PostgreSQL also allows a negative scale (rounding to tens, hundreds...) and a scale above the
    precision; both map to the smallest Arrow decimal that holds every allowed value.
    """
    if scale < 0:
        precision, scale = precision - scale, 0
    precision = max(precision, scale, 1)
    return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
