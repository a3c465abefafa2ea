"""How the commands write numbers, sizes and times for people (``--json`` is for programs)."""

from __future__ import annotations

from datetime import UTC, datetime

_UNITS = ("B", "kB", "MB", "GB", "TB")


def one_line(text: str) -> str:
    """A message on one line (a driver's may run over several)."""
    return " ".join(text.split())


def count(number: int, noun: str) -> str:
    """``1 table``, ``3 tables``, ``15,000 rows``."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def size(number: int | None) -> str:
    """Bytes in decimal units: ``830 B``, ``1.2 MB``."""
    if number is None:
        return "-"
    value, unit = float(number), 0
    while value >= 1000 and unit < len(_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    return f"{number} B" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


def when(moment: datetime | None) -> str:
    """A catalog or job time, in UTC to the second."""
    return "-" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def seconds(value: float) -> str:
    return f"{value:.1f} s"
