"""``flask refresh run``: ``POST /refresh`` from the shell, carried out in this process."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from refresh.api.context import runtime
from refresh.api.schemas import refresh_response
from refresh.cli.exits import FAILED, INTERRUPTED, fail, failures
from refresh.cli.formatting import count, one_line, seconds
from refresh.cli.progress import TableProgress
from refresh.connection_refresh import (
    ConnectionRefreshResult,
    refresh_in_process,
    tables_to_refresh,
)
from refresh.refresh_request import (
    Mode,
    RefreshRequest,
    RefreshResult,
    resolve_mode,
    run_refresh,
)
from refresh.runtime import Runtime


# Each option is a field of the body (``RefreshRequest``), under the same name.
@click.command("run")
@click.option("--connection", "connection_id", metavar="ID", help="The body's connection_id.")
@click.option("--schema", "schema_name", metavar="NAME", help="The body's schema_name.")
@click.option("--table", "table_name", metavar="NAME", help="The body's table_name.")
@click.option("--data", is_flag=True, help="The body's data: refresh data, not the schema.")
@click.option(
    "--include-uncached",
    is_flag=True,
    help="The body's include_uncached: tables never cached too.",
)
@click.option(
    "--if-changed", is_flag=True, help="The body's if_changed: skip tables that did not change."
)
@click.option(
    "--force", is_flag=True, help="The body's force: no change check; publish even a held version."
)
@click.option(
    "--full", is_flag=True, help="The body's full: a full refresh, whatever the refresh mode."
)
@click.option("--json", "as_json", is_flag=True, help="Print the body POST /refresh answers.")
@with_appcontext
def command(as_json: bool, **fields: Any) -> None:
    """Refresh as POST /refresh does, in this process.

    The same checks, in the same order, and the same answers as the API (--json prints its body).

    \b
      flask refresh run                                   schema of every connection
      flask refresh run --connection shop                 schema of one connection
      flask refresh run --connection shop --data --schema public --table orders
      flask refresh run --connection shop --data          every cached table

    A connection's tables are refreshed here, PARALLEL_REFRESH_COUNT at a time: a progress bar
    on a terminal, a line per table otherwise. Exit status: 0 done, 1 anything failed (a table,
    a connection, the source, the storage), 2 the request is invalid (docs/api.md lists the
    checks and their messages).
    """
    rt = runtime()
    request = RefreshRequest(**fields)
    with failures():
        mode = resolve_mode(rt, request)
        try:
            result: RefreshResult | ConnectionRefreshResult
            if mode is Mode.CONNECTION_DATA:
                result = _connection_data(rt, request, show_progress=not as_json)
            else:
                result = run_refresh(rt, request, mode)
        except KeyboardInterrupt:
            fail(
                "interrupted: what was being refreshed failed cleanly (previous versions stay "
                "current)",
                INTERRUPTED,
            )
    body = refresh_response(mode, asdict(result))
    click.echo(current_app.json.dumps(body) if as_json else summary(mode, body))
    if body.get("connections_failed") or body.get("tables_failed"):
        raise click.exceptions.Exit(FAILED)


def _connection_data(
    rt: Runtime, request: RefreshRequest, show_progress: bool
) -> ConnectionRefreshResult:
    assert request.connection_id is not None
    tables = tables_to_refresh(rt, request.connection_id, request.include_uncached)
    rules = request.rules
    if not show_progress:
        return refresh_in_process(rt, request.connection_id, tables, lambda _: None, rules)
    with TableProgress(len(tables), sys.stdout, terminal=sys.stdout.isatty()) as progress:
        return refresh_in_process(rt, request.connection_id, tables, progress.report, rules)


def summary(mode: Mode, body: Mapping[str, Any]) -> str:
    """The answer for people: what was refreshed, then each failure and warning on a line."""
    if mode is Mode.TABLE_DATA:
        name = f"{body['schema_name']}.{body['table_name']} (connection {body['connection_id']})"
        outcome = (
            "unchanged"
            if body.get("unchanged")
            else "held, not published"
            if body.get("held")
            else count(body["rows_synced"], "row")
        )
        lines = [f"{name}: {outcome} in {seconds(body['duration_ms'] / 1000)}"]
    elif mode is Mode.CONNECTION_DATA:
        done = count(body["tables_refreshed"], "table")
        unchanged = f" ({body['tables_unchanged']} unchanged)" if "tables_unchanged" in body else ""
        held = f", {body['tables_held']} held" if "tables_held" in body else ""
        head = f"{body['connection_id']}: {done} refreshed{unchanged}{held}"
        rows = f"{count(body['total_rows'], 'row')} in {seconds(body['duration_ms'] / 1000)}"
        lines = [f"{head}, {body['tables_failed']} failed, {rows}"]
        lines += [
            f"  failed: {e['schema_name']}.{e['table_name']}: {one_line(e['error'])}"
            for e in body["errors"]
        ]
    else:
        connections = count(body["connections_refreshed"], "connection")
        tables = count(body["tables_discovered"], "table")
        lines = [
            f"schema refresh: {connections} refreshed, {body['connections_failed']} failed; "
            f"{tables} discovered ({body['tables_added']} added, {body['tables_modified']} "
            "modified)"
        ]
        lines += [
            f"  failed: {e['connection_id']}: {one_line(e['error'])}"
            for e in body.get("errors", [])
        ]
    for warning in body.get("warnings", []):
        table = ".".join(warning[key] for key in ("schema_name", "table_name") if key in warning)
        lines.append(f"  warning: {table + ': ' if table else ''}{one_line(warning['message'])}")
    return "\n".join(lines)
