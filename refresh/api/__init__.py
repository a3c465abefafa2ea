"""The HTTP layer: parses requests, calls the refresh services, formats their answers."""

from __future__ import annotations

from flask import Flask

from refresh.api import (
    auth,
    connection_routes,
    health,
    metrics_routes,
    openapi,
    parsing,
    refresh_routes,
    schedule_routes,
    table_routes,
)
from refresh.api.error_responses import register_error_handlers


def register_api(app: Flask) -> None:
    register_error_handlers(app)
    auth.install(app)
    parsing.install(app)
    for module in (
        connection_routes,
        table_routes,
        schedule_routes,
        refresh_routes,
        metrics_routes,
        health,
        openapi,
    ):
        app.register_blueprint(module.blueprint)
