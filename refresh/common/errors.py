"""Errors the refresh logic raises for conditions an API user must be told about.

The HTTP layer maps each class to a status and an error code; the refresh logic never knows about
HTTP. Messages are written for the user and never carry a secret, so any ``RefreshError`` may be
shown as it is: in a response, in a job's ``error``, in a table's refresh history.
"""

from __future__ import annotations


class RefreshError(Exception):
    """Base of the service's expected failures."""


class InvalidRequest(RefreshError):
    """The request cannot be carried out as asked (an invalid field or combination)."""


class NotFound(RefreshError):
    """A connection, table or job the request names does not exist."""


class Conflict(RefreshError):
    """The request collides with the catalog's state (a name already taken)."""


class RefreshInProgress(Conflict):
    """The table is being refreshed by someone else, for longer than this request may wait."""


class ServiceUnavailable(RefreshError):
    """A component the request needs (the job queue's Redis) cannot be reached right now."""


class Misconfigured(RefreshError):
    """The service cannot use what it stored: SECRET_KEY changed, a source type it does not know."""


class Interrupted(RefreshError):
    """The work was stopped from outside: a worker shutting down, a job over its time limit."""


def public_message(error: BaseException) -> str:
    """What a user may be told about ``error``: its own words if it is ours, else nothing more
    than its kind (a traceback or a driver's raw message can hold values from the source)."""
    if isinstance(error, RefreshError):
        return str(error)
    if isinstance(error, KeyboardInterrupt | SystemExit):
        return "interrupted: the refreshing process was stopped"
    return f"internal error ({type(error).__name__}); see the service log"
