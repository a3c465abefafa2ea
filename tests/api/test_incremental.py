"""Incremental refresh (append, merge) end to end through HTTP, on PostgreSQL, MariaDB and SQLite,
with the cache on a filesystem and on S3: what each mode sees (docs/decisions.md, "Incremental
refresh"), the watermark, the versions as readers read them (DuckDB over ``<dir>/*.parquet``),
a column change, a process killed mid-refresh, and the deletion of the versions it builds on."""

from __future__ import annotations

import signal
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from refresh import version_build
from refresh.catalog import TableVersion, utcnow
from refresh.runtime import Runtime
from tests.support.api import register, table_info
from tests.support.backends import Backend
from tests.support.dying_refresh import kill_a_refresh
from tests.support.markers import both_storages
from tests.support.source_kinds import SourceKind

pytestmark = [
    pytest.mark.parametrize("kind", ["postgres", "mysql", "sqlite"], indirect=True),
    both_storages,
]

T0 = datetime(2026, 12, 1, 10, 0, 0)
COLUMNS = "id, stamp, v"


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


class Table:
    """Table ``t`` (``id`` key, ``stamp`` timestamp cursor, ``v`` text) at the source, registered
    as connection ``src``, and its view through the API."""

    def __init__(self, client: FlaskClient, kind: SourceKind, cache: Backend, scratch: Path):
        self.client, self.kind, self.cache, self.scratch = client, kind, cache, scratch
        self.path = f"/connections/src/tables/{kind.schema}/t"
        stamp = kind.timestamp_type
        kind.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, stamp {stamp}, v TEXT)")

    def insert(self, *rows: tuple[int, datetime, str]) -> None:
        statement = "INSERT INTO t (id, stamp, v) VALUES (?, ?, ?)"
        self.kind.execute(rows=(statement, list(rows)))

    def register(self, **settings: Any) -> None:
        register(self.client, "src", *self.kind.registration())
        answer = self.client.put(f"{self.path}/settings", json=settings)
        assert answer.status_code == 200, answer.get_json()

    def refresh(self, **flags: bool) -> dict[str, Any]:
        body = {
            "connection_id": "src",
            "schema_name": self.kind.schema,
            "table_name": "t",
            "data": True,
            **flags,
        }
        answer = self.client.post("/refresh", json=body)
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    def info(self) -> dict[str, Any]:
        return table_info(self.client, "src", self.kind.schema, "t")

    def cached(self, url: str | None = None) -> list[tuple[str, ...]]:
        """The version's rows (the current one's by default) as DuckDB reads its directory."""
        directory = self.cache.local_directory(url or self.info()["current_path"], self.scratch)
        rows = duckdb.sql(
            f"SELECT {COLUMNS} FROM read_parquet('{directory}/*.parquet') ORDER BY id"
        ).fetchall()
        return _text(rows)

    def source_rows(self) -> list[tuple[str, ...]]:
        return _text(self.kind.fetch(f"SELECT {COLUMNS} FROM t ORDER BY id"))

    def matches_source(self) -> bool:
        return self.cached() == self.source_rows()


def _text(rows: list[tuple]) -> list[tuple[str, ...]]:
    """Rows compared as text: SQLite hands timestamps back as the text it stores."""
    return [tuple(str(value) for value in row) for row in rows]


@pytest.fixture
def table(client: FlaskClient, kind: SourceKind, cache: Backend, tmp_path: Path) -> Table:
    return Table(client, kind, cache, tmp_path / "scratch")


def test_append_reads_what_is_new_and_keeps_the_rest(table: Table, rt: Runtime) -> None:
    table.insert(*((n, minutes(n), f"row {n}") for n in range(1, 6)))
    table.register(refresh_mode="append", cursor_column="stamp")

    first = table.refresh()
    assert (first["refresh_mode"], first["rows_synced"]) == ("full", 5)
    assert table.info()["watermark"] == minutes(5).isoformat()
    table.insert(*((n, minutes(n), f"row {n}") for n in range(6, 9)))

    second = table.refresh()

    # The rows at or past the watermark: the one on it again, and the three new ones.
    assert (second["refresh_mode"], second["rows_synced"]) == ("append", 4)
    info = table.info()
    assert (info["row_count"], info["watermark"]) == (8, minutes(8).isoformat())
    assert [(v["mode"], v["watermark"]) for v in info["versions"]] == [
        ("append", minutes(8).isoformat()),
        ("full", minutes(5).isoformat()),
    ]
    assert table.matches_source()
    parent = info["versions"][1]["path"]
    rt.storage.delete_prefix(parent)  # as the grace-period deletion does, once superseded
    assert not table.cache.holds(parent)
    assert table.matches_source()


def test_rows_tied_at_the_watermark_are_neither_lost_nor_doubled(table: Table) -> None:
    table.insert((1, minutes(1), "a"), (2, minutes(2), "b"), (3, minutes(2), "c"))
    table.register(refresh_mode="append", cursor_column="stamp")
    table.refresh()
    # Committed after the refresh, with the watermark's own value; and one past it.
    table.insert((4, minutes(2), "tied"), (5, minutes(3), "d"))

    assert table.refresh()["refresh_mode"] == "append"

    assert table.matches_source()
    assert table.info()["row_count"] == 5


def test_a_late_commit_inside_the_overlap_is_caught_one_below_needs_a_full_refresh(
    table: Table,
) -> None:
    table.insert(*((n, minutes(n), f"row {n}") for n in range(1, 11)))
    table.register(refresh_mode="append", cursor_column="stamp", cursor_overlap=60)
    table.refresh()
    table.insert(
        (11, minutes(10 - 0.5), "late, inside the overlap"),
        (12, minutes(10 - 5), "late, below the overlap"),
        (13, minutes(11), "new"),
    )

    assert table.refresh()["refresh_mode"] == "append"

    cached_ids = [int(row[0]) for row in table.cached()]
    assert cached_ids == [*range(1, 12), 13]
    full = table.refresh(full=True)
    assert full["refresh_mode"] == "full"
    assert table.matches_source()


def test_merge_applies_updates_by_key_and_a_full_refresh_reconciles_deletes(
    table: Table,
) -> None:
    table.insert(*((n, minutes(n), f"row {n}") for n in range(1, 6)))
    # no primary_key setting: the source's own key, as discovery found it
    table.register(refresh_mode="merge", cursor_column="stamp", cursor_overlap=60)
    assert table.info()["primary_key"] == ["id"]
    table.refresh()
    table.kind.execute(
        f"UPDATE t SET v = 'changed', stamp = '{minutes(10)}' WHERE id = 2",
        "UPDATE t SET v = 'changed too' WHERE id = 5",  # within the overlap, its cursor kept
        "DELETE FROM t WHERE id = 3",
    )
    table.insert((6, minutes(11), "new"))

    merged = table.refresh()

    assert merged["refresh_mode"] == "merge"
    cached = table.cached()
    # Rows 4 and 5, within the overlap, were read again and not doubled; the delete of row 3
    # is not seen.
    assert [int(row[0]) for row in cached] == [1, 2, 3, 4, 5, 6]
    assert cached[1] == ("2", str(minutes(10)), "changed")
    assert cached[4] == ("5", str(minutes(5)), "changed too")
    assert table.info()["watermark"] == minutes(11).isoformat()
    assert table.refresh(full=True)["refresh_mode"] == "full"
    assert table.matches_source()


def test_a_column_added_at_the_source_makes_a_full_version(table: Table) -> None:
    table.insert((1, minutes(1), "a"))
    table.register(refresh_mode="append", cursor_column="stamp")
    table.refresh()
    table.kind.execute("ALTER TABLE t ADD COLUMN extra INTEGER")
    table.insert((2, minutes(2), "b"))

    answer = table.refresh()

    assert (answer["refresh_mode"], answer["rows_synced"]) == ("full", 2)
    assert table.matches_source()
    assert [c["name"] for c in table.info()["columns"]] == ["id", "stamp", "v", "extra"]


def test_full_refresh_every_seconds_brings_a_full_version_once_due(
    table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    table.insert((1, minutes(1), "a"))
    table.register(refresh_mode="append", cursor_column="stamp", full_refresh_every_seconds=3600)
    table.refresh()
    table.insert((2, minutes(2), "b"))
    assert table.refresh()["refresh_mode"] == "append"

    later = utcnow() + timedelta(hours=1)
    monkeypatch.setattr(version_build, "utcnow", lambda: later)

    assert table.refresh()["refresh_mode"] == "full"
    assert table.matches_source()


def test_a_refresh_killed_mid_incremental_keeps_the_version_and_its_watermark(
    table: Table, rt: Runtime, environ: dict[str, str]
) -> None:
    table.insert(*((n, minutes(n), f"row {n}") for n in range(1, 4)))
    table.register(refresh_mode="append", cursor_column="stamp")
    table.refresh()
    before = table.info()
    table.insert((4, minutes(4), "d"))

    killed = kill_a_refresh(environ, "src", table.kind.schema, "t", "before-manifest")

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    after = table.info()
    assert after["current_path"] == before["current_path"]
    assert after["watermark"] == before["watermark"] == minutes(3).isoformat()
    assert [v["status"] for v in after["versions"]] == ["writing", "current"]
    assert [int(row[0]) for row in table.cached()] == [1, 2, 3]
    with rt.catalog.session() as session:  # its heartbeat stopped: stale after a while
        session.execute(
            update(TableVersion)
            .where(TableVersion.status == "writing")
            .values(heartbeat_at=utcnow() - timedelta(hours=1))
        )

    assert table.refresh()["refresh_mode"] == "append"  # the claim is taken over
    assert table.matches_source()
    with rt.catalog.session() as session:
        statuses = session.scalars(select(TableVersion.status).order_by(TableVersion.id)).all()
    assert statuses == ["superseded", "failed", "current"]


def test_the_hold_compares_the_new_versions_rows_not_the_rows_read(table: Table) -> None:
    table.insert(*((n, minutes(n), f"row {n}") for n in range(1, 51)))
    table.register(refresh_mode="append", cursor_column="stamp", hold_below_ratio=0.5)
    table.refresh()
    table.insert((51, minutes(51), "new"))

    answer = table.refresh()

    # 2 rows read (the one on the watermark, the new one) of 51: published, not held.
    assert (answer["refresh_mode"], answer["rows_synced"]) == ("append", 2)
    assert "held" not in answer
    assert table.info()["row_count"] == 51
    assert table.matches_source()


def test_a_connection_wide_refresh_refreshes_each_table_by_its_mode(table: Table) -> None:
    table.insert(*((n, minutes(n), f"row {n}") for n in range(1, 4)))
    table.register(refresh_mode="append", cursor_column="stamp")
    table.refresh()
    table.insert((4, minutes(4), "d"))
    connection = {"connection_id": "src", "data": True, "async": False}

    incremental = table.client.post("/refresh", json=connection)
    assert incremental.status_code == 200, incremental.get_json()
    assert incremental.get_json()["total_rows"] == 2  # the row on the watermark, the new one
    assert table.info()["versions"][0]["mode"] == "append"
    assert table.matches_source()

    full = table.client.post("/refresh", json={**connection, "full": True})
    assert full.status_code == 200, full.get_json()
    assert full.get_json()["total_rows"] == 4
    assert table.info()["versions"][0]["mode"] == "full"
