"""Access to the process's ``Runtime`` from inside a request."""

from __future__ import annotations

from flask import current_app

from refresh.runtime import Runtime

EXTENSION = "refresh"


def runtime() -> Runtime:
    return current_app.extensions[EXTENSION]
