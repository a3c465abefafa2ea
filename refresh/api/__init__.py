"""The HTTP layer: parses requests, calls the refresh services, formats their answers."""

from __future__ import annotations

from flask import Flask

from refresh.api import auth, connections, health, openapi, parsing, refresh, tables
from refresh.api.errors import register_error_handlers


def register_api(app: Flask) -> None:
    register_error_handlers(app)
    auth.install(app)
    parsing.install(app)
    for module in (connections, tables, refresh, health, openapi):
        app.register_blueprint(module.blueprint)
