"""``flask refresh versions``: where each version of a connection's tables stands."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from refresh.api.context import runtime
from refresh.catalog import Table, TableVersion, VersionStatus
from refresh.cli.exits import failures
from refresh.cli.formatting import count, one_line, size, when
from refresh.tables import version_histories
from refresh.versions.deletions import QueuedDeletion, queued_deletions


@click.command("versions")
@click.option("--connection", "connection_id", required=True, metavar="ID")
@click.option("--schema", "schema_name", metavar="NAME", help="Only the tables of this schema.")
@click.option("--table", "table_name", metavar="NAME", help="Only the tables of this name.")
@click.option("--all", "everything", is_flag=True, help="Deleted versions too.")
@with_appcontext
def command(
    connection_id: str, schema_name: str | None, table_name: str | None, everything: bool
) -> None:
    """A connection's tables, each with its versions.

    Newest first: current, writing, superseded, failed, deletion_failed, and for those waiting
    in the deletion queue when they are due and their failed attempts. Versions whose directory
    was deleted are left out unless --all is given.
    """
    rt = runtime()
    with failures():
        tables = version_histories(rt, connection_id, schema_name, table_name)
        queue = {row.path: row for row in queued_deletions(rt)}
    for table in tables:
        click.echo(heading(table))
        for version in table.versions:
            if everything or version.status != VersionStatus.DELETED:
                click.echo(line(version, queue.get(version.path), rt.settings.max_deletion_retries))


def heading(table: Table) -> str:
    state = "never cached" if table.current_path is None else f"current: {table.current_version}"
    removed = ", removed at the source" if table.removed_at is not None else ""
    return f"{table.schema_name}.{table.table_name} ({state}{removed})"


def line(version: TableVersion, queued: QueuedDeletion | None, retries: int) -> str:
    parts = [f"  {version.version}  {version.status:<15}"]
    if version.rows is not None:
        parts.append(f"{count(version.rows, 'row')}, {size(version.bytes)}{made(version)}")
    parts.append(f"started {when(version.started_at)}")
    if version.deleted_at is not None:
        parts.append(f"deleted {when(version.deleted_at)}")
    if queued is not None:
        parts.append(pending(queued, retries))
    if version.error:
        parts.append(f"error: {one_line(version.error)}")
    return "  ".join(parts)


def made(version: TableVersion) -> str:
    """How the version was made (decisions D100), and up to where, when it says."""
    if version.mode is None:  # written before versions recorded it
        return ""
    watermark = f" to {version.watermark}" if version.watermark is not None else ""
    return f", {version.mode}{watermark}"


def pending(queued: QueuedDeletion, retries: int) -> str:
    due = (
        f"pending deletion, due {when(queued.delete_after)}"
        if queued.delete_after is not None
        else f"pending deletion, due time unreadable ({queued.stored!r})"
    )
    if queued.retry_count:
        failed = one_line(queued.last_error or "")
        due += f" ({queued.retry_count} of {retries} attempts failed: {failed})"
    return due
