"""The change check of a data refresh: the fingerprints a source gives now, and the one recorded
with each table's current version. A table whose fingerprint now equals its recorded one, and is
not None, has not changed since that version was read.

The refresh flow calls ``take_fingerprints`` before reading (for all the tables of a batch at
once), compares with ``recorded_fingerprints``, skips the unchanged ones, and records the new
fingerprint with the version it then writes (``table_versions.fingerprint``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from refresh.catalog import Table, TableVersion
from refresh.check_sql import check_fingerprint
from refresh.prefetch import call_within
from refresh.runtime import Runtime
from refresh.sources import Source

Key = tuple[str, str]


def take_fingerprints(
    rt: Runtime, source: Source, checks: Mapping[Key, str | None]
) -> dict[Key, str | None]:
    """Each table's fingerprint now: its ``check_sql``'s (the value of ``checks``) where it has
    one, else the source's own, asked for all those tables in one call.

    Every source call is bounded by ``SOURCE_STALL_TIMEOUT_SECONDS`` (``Stalled``, after which
    the source is interrupted). A failing ``check_sql`` raises its ``SourceError``.
    """
    stall = rt.settings.source_stall_timeout_seconds
    plain = [key for key, sql in checks.items() if sql is None]
    found: dict[Key, str | None] = {}
    if plain:
        found |= call_within(lambda: source.fingerprints(plain), stall, source.interrupt)
    for key, sql in checks.items():
        if sql is not None:
            row = call_within(lambda sql=sql: source.run_check(sql), stall, source.interrupt)
            found[key] = check_fingerprint(sql, row)
    return found


def recorded_fingerprints(session: Session, table_ids: Collection[int]) -> dict[int, str | None]:
    """The fingerprint recorded with each table's current version, by table id (None: the table
    is not cached, or its version has none)."""
    rows = session.execute(
        select(Table.id, TableVersion.fingerprint)
        .outerjoin(
            TableVersion,
            and_(
                TableVersion.table_id == Table.id,
                TableVersion.version == Table.current_version,
            ),
        )
        .where(Table.id.in_(list(table_ids)))
    )
    return {table_id: fingerprint for table_id, fingerprint in rows}


def unchanged(recorded: str | None, now: str | None) -> bool:
    return now is not None and now == recorded
