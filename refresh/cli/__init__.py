"""The operator's command line, ``flask refresh ...``: the HTTP API's sibling, for shells and cron.

Like the HTTP layer it parses, calls the refresh service's functions and formats their answers
(one line on stderr and an exit status for a failure: ``refresh.cli.exits``). A command runs in
a process of its own against the configured catalog and storage; no job worker or scheduler
starts in it (``app.py``).
"""

from __future__ import annotations

from flask import Flask
from flask.cli import AppGroup

from refresh.cli import gc_command, jobs_command, run_command, versions_command

group = AppGroup(
    "refresh",
    help="Refresh tables, and see the jobs, the versions and the deletion queue (docs/api.md).",
)
for module in (run_command, jobs_command, versions_command, gc_command):
    group.add_command(module.command)


def register_cli(app: Flask) -> None:
    app.cli.add_command(group)
