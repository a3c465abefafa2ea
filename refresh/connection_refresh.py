"""Connection-wide data refresh (mode 4): which tables it covers, in which batches, and its summary.

The batches run as jobs (``workers/``), each through ``data_refresh.refresh_tables``; this module
holds the ends of that fan-out, so the job layer stays a thin wrapper: the tables and their
batches before, and the result object after, built from however the tables ended. The command
line runs the same refresh in its own process, without jobs (``refresh_in_process``).

Batches are sized by what is known of each table: the size of its current version, a stand-in
for what its refresh will cost, or before its first version the size the source's statistics
give it (``Source.size_estimates``, scaled to Parquet). A batch job has a cost of its own (a
forked work horse, its catalog and source connections) far above a small table's: many small
tables share a batch, and a big table gets one of its own. There are enough batches for every
slot of the connection's cap to work, and a few more, so that slots which finish early take the
rest. The measurements behind the constants are in bench/README.md.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import select

from refresh.catalog import Table
from refresh.common.errors import RefreshError
from refresh.data_refresh import ChangeRules, TableOutcome, refresh_tables
from refresh.lookup import load_connection, open_source
from refresh.prefetch import call_within
from refresh.runtime import Runtime

# A table of a batch runs on one of its threads: two keep the source, the Parquet writer and the
# catalog's round trips overlapping on two cores.
BATCH_THREADS = 2
# What a table costs besides its data, in bytes of Parquet that take as long to write: claiming,
# describing, publishing and reporting it, and its own files.
TABLE_OVERHEAD_BYTES = 64 * 1024
# A batch holds at least this much work (about a second of it), so its own cost stays small...
MIN_BATCH_BYTES = 64 * 1024 * 1024
# ...and the batches of a refresh are at least twice as many as the slots that run them, for
# balance (a slot done early takes the next), unless that would make them smaller than the above.
BATCHES_PER_SLOT = 2
# A table never refreshed has no size yet: it counts as what the source's statistics say, times
# this (the reference orders table takes 2.6 to 3 times its Parquet size in PostgreSQL)...
PARQUET_BYTES_PER_SOURCE_BYTE = 0.37
# ...or, when the source does not say, as this much.
UNKNOWN_TABLE_BYTES = 1024 * 1024

log = logging.getLogger(__name__)


@dataclass
class ConnectionRefreshResult:
    connection_id: str
    tables_refreshed: int = 0  # published, or found unchanged
    tables_failed: int = 0
    tables_unchanged: int = 0
    tables_held: int = 0  # neither refreshed nor failed: the previous version stays current
    total_rows: int = 0
    duration_ms: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class TableToRefresh:
    schema_name: str
    table_name: str
    size_bytes: int | None  # the current version's, None when never cached
    source_bytes: int | None = None  # the source's estimate, asked for when never cached

    @property
    def cost(self) -> int:
        if self.size_bytes is not None:
            size = self.size_bytes
        elif self.source_bytes is not None:
            size = int(self.source_bytes * PARQUET_BYTES_PER_SOURCE_BYTE)
        else:
            size = UNKNOWN_TABLE_BYTES
        return TABLE_OVERHEAD_BYTES + size


def tables_to_refresh(
    rt: Runtime, connection_id: str, include_uncached: bool
) -> list[TableToRefresh]:
    """The tables a connection-wide refresh covers, in a stable order.

    Cached tables only unless ``include_uncached``; tables marked removed at the source are left
    out (skipped, not failed). Raises ``NotFound`` for an unknown connection.
    """
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        query = select(Table.schema_name, Table.table_name, Table.size_bytes).where(
            Table.connection_id == connection_id, Table.removed_at.is_(None)
        )
        if not include_uncached:
            query = query.where(Table.current_path.is_not(None))
        rows = session.execute(query.order_by(Table.schema_name, Table.table_name))
        return [TableToRefresh(*row) for row in rows]


def with_source_sizes(
    rt: Runtime, connection_id: str, tables: list[TableToRefresh]
) -> list[TableToRefresh]:
    """``tables``, those never cached with the size the source's statistics give them.

    One question to the source, bounded by ``SOURCE_STALL_TIMEOUT_SECONDS``. Best effort: only
    the batches' balance depends on it, so a source that cannot answer leaves the sizes unknown
    (logged) and the refresh goes on, each table then failing or not on its own.
    """
    unknown = [(t.schema_name, t.table_name) for t in tables if t.size_bytes is None]
    if not unknown:
        return tables
    try:
        with rt.catalog.session() as session:
            connection = load_connection(session, connection_id)
        with open_source(rt, connection) as source:
            sizes = call_within(
                lambda: source.size_estimates(unknown),
                rt.settings.source_stall_timeout_seconds,
                source.interrupt,
            )
    except RefreshError as error:
        log.warning("no sizes from the source of %s: %s", connection_id, error)
        return tables
    return [replace(t, source_bytes=sizes.get((t.schema_name, t.table_name))) for t in tables]


def plan_batches(tables: list[TableToRefresh], slots: int) -> list[list[TableToRefresh]]:
    """Split the tables into batches of about equal cost (see the module's docstring).

    Tables go biggest first, each into the batch with the least cost so far (balanced, and the
    big ones start early); a table costing a whole batch or more gets a batch of its own. Within a
    batch the original order is kept.
    """
    if not tables:
        return []
    total = sum(t.cost for t in tables)
    target = max(MIN_BATCH_BYTES, total / (slots * BATCHES_PER_SLOT))
    count = max(1, min(len(tables), math.ceil(total / target)))
    batches: list[list[TableToRefresh]] = [[] for _ in range(count)]
    costs = [0] * count
    for table in sorted(tables, key=lambda t: -t.cost):
        lightest = min(range(count), key=costs.__getitem__)
        batches[lightest].append(table)
        costs[lightest] += table.cost
    order = {(t.schema_name, t.table_name): n for n, t in enumerate(tables)}
    return [
        sorted(batch, key=lambda t: order[t.schema_name, t.table_name])
        for batch in batches
        if batch
    ]


def summarize(
    connection_id: str, outcomes: Iterable[TableOutcome], duration_ms: int
) -> ConnectionRefreshResult:
    """The result object; ``errors`` and ``warnings`` sorted by table for stable output.

    ``total_rows`` counts the rows copied: none for a table found unchanged or held."""
    result = ConnectionRefreshResult(connection_id, duration_ms=duration_ms)
    for outcome in sorted(outcomes, key=lambda o: (o.schema_name, o.table_name)):
        if outcome.held:
            result.tables_held += 1
            result.warnings.extend(outcome.warnings)
        elif outcome.error is None:
            result.tables_refreshed += 1
            result.tables_unchanged += outcome.unchanged
            result.total_rows += outcome.rows_synced
            result.warnings.extend(outcome.warnings)
        else:
            result.tables_failed += 1
            result.errors.append(
                {
                    "schema_name": outcome.schema_name,
                    "table_name": outcome.table_name,
                    "error": outcome.error,
                }
            )
    return result


def refresh_in_process(
    rt: Runtime,
    connection_id: str,
    tables: Sequence[TableToRefresh],
    report: Callable[[list[TableOutcome]], None],
    rules: ChangeRules,
) -> ConnectionRefreshResult:
    """Mode 4 in the calling process, without jobs (``flask refresh run``): ``tables`` as one
    batch on ``PARALLEL_REFRESH_COUNT`` threads, as many as embedded mode's job threads, by
    ``rules`` as a batch job would.

    ``report`` gets the tables' outcomes as they end. A table another refresh holds is waited for
    as a request waits (``REFRESH_WAIT_SECONDS``), then reported failed naming that refresh; the
    per-connection cap of the job queue (a rate limit of its batch jobs) does not see this
    process, which counts its own threads only.
    """
    started = time.monotonic()
    deadline = started + rt.settings.refresh_wait_seconds
    outcomes: list[TableOutcome] = []

    def record(ended: list[TableOutcome]) -> None:
        outcomes.extend(ended)
        report(ended)

    names = [(table.schema_name, table.table_name) for table in tables]
    threads = rt.settings.parallel_refresh_count
    held = refresh_tables(rt, connection_id, names, None, record, threads=threads, rules=rules)
    while held:
        last_try = time.monotonic() >= deadline
        held = refresh_tables(
            rt, connection_id, [], None, record, held, threads, last_try=last_try, rules=rules
        )
    return summarize(connection_id, outcomes, int((time.monotonic() - started) * 1000))
