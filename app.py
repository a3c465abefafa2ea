"""The refresh service's WSGI application: ``gunicorn 'app:create_app()'``.

The ``flask`` command line finds ``create_app`` here too, for the operator's commands
(``flask refresh ...``, ``refresh/cli``).
"""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import run_command

from config import ConfigError, Settings, load_settings
from refresh.api import register_api
from refresh.api.context import EXTENSION, JOBS
from refresh.api.dashboard import mount_dashboard
from refresh.cli import register_cli
from refresh.runtime import Runtime
from workers.runner import open_job_queue

MAX_BODY_BYTES = 1024 * 1024
# How the dashboard names the in-process broker of embedded mode.
EMBEDDED_REDIS_LABEL = "redis://embedded/0"


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from ``settings`` (default: the environment, read once here).

    Without ``REDIS_URL`` this also starts the in-process job workers and scheduler (embedded
    mode); call ``app.extensions[JOBS].close()`` to stop them when the app is dropped before its
    process. Not when the ``flask`` command line builds the app to run one of its commands: see
    ``_for_a_command``.
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
    app.extensions[EXTENSION] = runtime
    register_api(app)
    register_cli(app)
    if settings.embedded and _for_a_command():
        return app
    jobs = open_job_queue(runtime)
    app.extensions[JOBS] = jobs
    mount_dashboard(app, jobs.connection, label=settings.redis_url or EMBEDDED_REDIS_LABEL)
    return app


def _for_a_command() -> bool:
    """Whether the ``flask`` command line builds the app to run a command (``flask refresh ...``,
    ``flask routes``) rather than to serve it (gunicorn, ``flask run``).

    Such a process ends with its command and needs the runtime only: the in-process broker of
    embedded mode would start job threads for nothing, and its scheduler would process due
    deletions and sweep orphans in it (under ``flask refresh gc --dry-run`` too). With Redis,
    the job queue is a connection (``flask refresh jobs`` reads it), nothing starts.
    """
    context = click.get_current_context(silent=True)
    return context is not None and context.command is not run_command
