"""What a ``flask refresh`` process starts: the runtime, and no job worker or scheduler.

In embedded mode the web process runs the jobs and the deletion schedule; a command built from
the same ``create_app`` must not, or ``gc --dry-run`` would delete in the background.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import FlaskGroup, run_command

from app import create_app
from config import Settings, load_settings
from refresh.api.context import EXTENSION, JOBS
from refresh.catalog import Catalog
from refresh.catalog.migrations import upgrade as migrate
from tests.support.workers import RedisDatabase


@pytest.fixture
def apps(settings: Settings) -> Iterator[list[Flask]]:
    """The apps a test builds (on a migrated catalog), closed afterwards."""
    catalog = Catalog(settings.database_url)
    migrate(catalog)
    catalog.dispose()
    built: list[Flask] = []
    yield built
    for app in built:
        if JOBS in app.extensions:
            app.extensions[JOBS].close()
        app.extensions[EXTENSION].catalog.dispose()


def embedded_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("embedded-")}


def flask_group(settings: Settings, apps: list[Flask]) -> FlaskGroup:
    """The ``flask`` command line, its app built by ``create_app``."""

    def build() -> Flask:
        apps.append(create_app(settings))
        return apps[-1]

    return FlaskGroup(create_app=build)


def test_a_command_runs_without_the_embedded_broker(settings: Settings, apps: list[Flask]) -> None:
    before = embedded_threads()

    result = CliRunner().invoke(flask_group(settings, apps), ["refresh", "gc", "--dry-run"])

    assert result.exit_code == 0, result.output
    [app] = apps
    assert JOBS not in app.extensions
    assert embedded_threads() == before


def test_flask_run_serves_with_the_embedded_broker(settings: Settings, apps: list[Flask]) -> None:
    with click.Context(run_command):
        apps.append(create_app(settings))

    assert JOBS in apps[0].extensions


def test_with_redis_a_command_reads_the_job_queue(
    environ: dict[str, str], redis_database: RedisDatabase, apps: list[Flask]
) -> None:
    redis_database.client().flushdb()
    settings = load_settings({**environ, "REDIS_URL": redis_database.url})

    result = CliRunner().invoke(flask_group(settings, apps), ["refresh", "jobs"])

    assert (result.exit_code, result.stdout) == (0, "no jobs\n")
    [app] = apps
    assert JOBS in app.extensions
