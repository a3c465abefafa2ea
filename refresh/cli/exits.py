"""How a command ends: a failure is one line on stderr and an exit status a script can test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from refresh.cli.formatting import one_line
from refresh.common.errors import InvalidRequest, NotFound, RefreshError

# Something failed: a table, a connection, a deletion, or what the command needs (the catalog,
# the source, the storage, Redis).
FAILED = 1
# The request itself is invalid (what the API answers with 400 or 404), like Click's own usage
# errors.
INVALID = 2
# Stopped with Ctrl-C (128 + SIGINT), as shells count it.
INTERRUPTED = 130


def fail(message: str, status: int = FAILED) -> NoReturn:
    click.echo(f"error: {one_line(message)}", err=True)
    raise click.exceptions.Exit(status)


@contextmanager
def failures() -> Iterator[None]:
    """The service's own errors end the command with their message (written for users, never a
    secret); anything else is a bug and keeps its traceback."""
    try:
        yield
    except (InvalidRequest, NotFound) as error:
        fail(str(error), INVALID)
    except RefreshError as error:
        fail(str(error))
