"""``SourceError``, and turning driver exceptions into it, every secret removed (guarantee 4)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError

from refresh.common.errors import RefreshError
from refresh.common.redact import redact


class SourceError(RefreshError):
    """The source could not be reached, refused the login, or failed a query.

    The message is shown to API users as is, so sources build it from the driver's message with
    every secret already removed (see ``refresh.common.redact``).
    """


def driver_message(error: BaseException) -> str:
    """The driver's own words: SQLAlchemy wraps them with the SQL text and a help link."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig
    return str(error).strip() or type(error).__name__


@contextmanager
def source_errors(
    secrets: Collection[str | None], kinds: tuple[type[BaseException], ...]
) -> Iterator[None]:
    """Re-raise the driver errors ``kinds`` as ``SourceError`` with ``secrets`` masked.

    ``UnicodeError`` too: drivers raise it, outside their own classes, on input they cannot
    encode (a host name with a DNS label over 63 characters fails Python's IDNA codec).

    The original exception is dropped (``from None``), not chained: a logged traceback would
    otherwise print its unredacted message, connection string included.
    """
    try:
        yield
    except SourceError:
        raise
    except (*kinds, UnicodeError) as error:
        raise SourceError(redact(driver_message(error), secrets)) from None
