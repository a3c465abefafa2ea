"""How many refreshes ran at once: slow tables to make them overlap, and the catalog's record of
when each ran (tests/workers)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from refresh.catalog import Table, TableVersion
from refresh.runtime import Runtime
from tests.support.services import Database, PostgresServer


def slow_tables(postgres: PostgresServer, db: Database, count: int, seconds: float) -> None:
    """Views that each take ``seconds`` to read, so the refreshes of several overlap."""
    with postgres.connect(db) as conn:
        for n in range(count):
            conn.execute(
                f"CREATE VIEW slow_{n} AS SELECT g AS id FROM generate_series(1, 100) g, "
                f"pg_sleep({seconds})"
            )


def refresh_intervals(rt: Runtime) -> dict[str, list[tuple[datetime, datetime]]]:
    """When each table's data refreshes ran: (claimed, published) per version, by table."""
    with rt.catalog.session() as session:
        rows = session.execute(
            select(Table.table_name, TableVersion.started_at, TableVersion.finished_at).join(
                Table, Table.id == TableVersion.table_id
            )
        ).all()
    intervals: dict[str, list[tuple[datetime, datetime]]] = {}
    for name, started, finished in rows:
        intervals.setdefault(name, []).append((started, finished))
    return intervals


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(f, -1) for _, f in intervals])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak
