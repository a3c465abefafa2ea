"""Errors the refresh logic raises for conditions an API user must be told about.

The HTTP layer maps each class to a status and an error code; the refresh logic never knows about
HTTP. Messages are written for the user and never carry a secret.
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


class NotImplementedYet(RefreshError):
    """A mode of the API that this version of the service does not run yet."""
