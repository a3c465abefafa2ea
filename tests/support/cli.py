"""The operator's command line (``flask refresh ...``) as the tests drive it.

``invoke`` goes through Click's test runner, with the app built exactly as the ``flask`` command
line builds it for a command (no job workers, no scheduler); ``run_flask`` starts the
virtualenv's ``flask`` itself from the repository root, as an operator's shell or cron does,
optionally on a terminal (a pseudo-terminal) to see what a person sees.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import FlaskGroup

from config import Settings
from refresh.api.context import EXTENSION
from tests.support.paths import ROOT
from tests.support.services import Database, PostgresServer

FLASK = Path(sysconfig.get_path("scripts")) / "flask"
TIMEOUT_SECONDS = 120
# The tables of the ``shop`` source and their rows.
SHOP = {"orders": 1000, "items": 50}
# How the failing table's refresh fails: its column's NaN has no decimal value.
BROKEN_ERROR_START = 'column "v": '


def fill_shop(postgres: PostgresServer, db: Database, broken: bool = False) -> None:
    """The ``shop`` tables in ``db``; with ``broken``, also a table whose refresh fails."""
    with postgres.connect(db) as conn:
        for table, rows in SHOP.items():
            conn.execute(
                f"CREATE TABLE {table} AS SELECT g AS id, 'row ' || g AS label "
                f"FROM generate_series(1, {rows}) g"
            )
        if broken:
            conn.execute("CREATE TABLE broken (v numeric)")
            conn.execute("INSERT INTO broken VALUES ('NaN')")


def invoke(settings: Settings, *args: str) -> Result:
    """``flask refresh <args>`` through Click's runner; stdout and stderr apart."""
    from app import create_app

    built: list[Flask] = []

    def build() -> Flask:
        built.append(create_app(settings))
        return built[-1]

    try:
        return CliRunner().invoke(FlaskGroup(create_app=build), ["refresh", *args])
    finally:
        for app in built:
            app.extensions[EXTENSION].catalog.dispose()


@dataclass(frozen=True)
class Finished:
    status: int
    stdout: str
    stderr: str


def run_flask(environ: Mapping[str, str], *args: str, terminal: bool = False) -> Finished:
    """``flask refresh <args>`` in a process of its own with ``environ`` as its whole environment
    (plus PATH). With ``terminal``, its stdout is a pseudo-terminal (stderr stays a pipe)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **environ}
    command = [str(FLASK), "refresh", *args]
    if not terminal:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS
        )
        return Finished(done.returncode, done.stdout, done.stderr)
    main, secondary = pty.openpty()
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=secondary, stderr=subprocess.PIPE, text=True
    ) as process:
        os.close(secondary)
        output = _read_all(main)
        stderr = process.stderr.read() if process.stderr else ""
        status = process.wait(timeout=TIMEOUT_SECONDS)
    return Finished(status, output, stderr)


def _read_all(fd: int) -> str:
    """Everything written to a pseudo-terminal until its last writer closes it."""
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:  # EIO: the other side is closed
        pass
    finally:
        os.close(fd)
    return b"".join(chunks).decode()
