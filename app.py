"""The refresh service's WSGI application: ``gunicorn 'app:create_app()'``."""

from __future__ import annotations

import sys

from flask import Flask

from config import ConfigError, Settings, load_settings
from refresh.api import register_api
from refresh.api.context import EXTENSION
from refresh.runtime import Runtime

MAX_BODY_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from ``settings`` (default: the environment, read once here)."""
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as error:
            sys.exit(f"configuration error: {error}")
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES)
    app.json.sort_keys = False
    app.extensions[EXTENSION] = Runtime.from_settings(settings)
    register_api(app)
    return app
