"""The refresh service's WSGI application: ``gunicorn 'app:create_app()'``."""

from __future__ import annotations

import sys

from flask import Flask

from config import ConfigError, Settings, load_settings
from refresh.api import register_api
from refresh.api.context import EXTENSION, JOBS
from refresh.api.dashboard import mount_dashboard
from refresh.runtime import Runtime
from workers.runner import open_job_queue

MAX_BODY_BYTES = 1024 * 1024
# How the dashboard names the in-process broker of embedded mode.
EMBEDDED_REDIS_LABEL = "redis://embedded/0"


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from ``settings`` (default: the environment, read once here).

    Without ``REDIS_URL`` this also starts the in-process job workers and scheduler (embedded
    mode); call ``app.extensions[JOBS].close()`` to stop them when the app is dropped before its
    process.
    """
    try:
        if settings is None:
            settings = load_settings()
        runtime = Runtime.from_settings(settings)
    except ConfigError as error:
        sys.exit(f"configuration error: {error}")
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES)
    app.json.sort_keys = False
    jobs = open_job_queue(runtime)
    app.extensions[EXTENSION] = runtime
    app.extensions[JOBS] = jobs
    register_api(app)
    mount_dashboard(app, jobs.connection, label=settings.redis_url or EMBEDDED_REDIS_LABEL)
    return app
