"""The refresh flow's freshness, through the API: change checks skip unchanged tables, a hold
keeps a good cache from an emptied source, and the table views and metrics follow real
refreshes.

A source's fingerprint may be missing for a moment after a write (statistics or change times
settling: docs/decisions.md, D69-D71), and a missing one means "changed"; so a test waits, with a
deadline, for a check to find a table unchanged, but asserts at once that a committed change is
never missed.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.api import assert_error, refresh, register, submit, table_info, wait_for_job
from tests.support.markers import both_catalogs
from tests.support.metrics import labels, scrape
from tests.support.services import Database, PostgresServer
from tests.support.source_kinds import SourceKind
from tests.support.workers import wait_until

SETTLE_SECONDS = 60
fingerprinted = pytest.mark.parametrize(
    "kind", ["postgres", "mysql", "sqlite", "duckdb"], indirect=True
)


def body(kind: SourceKind, **flags: bool) -> dict[str, Any]:
    return {
        "connection_id": "src",
        "schema_name": kind.schema,
        "table_name": "t",
        "data": True,
        **flags,
    }


def post(client: FlaskClient, request: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/refresh", json=request)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def statuses(client: FlaskClient, schema: str, table: str = "t") -> list[str]:
    return [v["status"] for v in table_info(client, "src", schema, table)["versions"]]


def found_unchanged(client: FlaskClient, request: dict[str, Any]) -> None:
    """Refresh with ``if_changed`` until a check finds the table unchanged (its fingerprint
    settled and recorded), within a deadline."""
    wait_until(
        lambda: post(client, request).get("unchanged") is True,
        SETTLE_SECONDS,
        "the change check never found the table unchanged",
        interval=0.5,
    )


@fingerprinted
def test_an_unchanged_table_is_not_read_again_and_a_change_is_never_missed(
    client: FlaskClient, kind: SourceKind
) -> None:
    # Made by INSERT, not CREATE ... AS SELECT: MariaDB leaves UPDATE_TIME empty for the latter
    # (no fingerprint until the next write: always "changed").
    kind.execute(
        f"CREATE TABLE {kind.quote('t')} (id INTEGER)",
        rows=(f"INSERT INTO {kind.quote('t')} VALUES (?)", [(n,) for n in range(1, 101)]),
    )
    register(client, "src", *kind.registration())
    checked = body(kind, if_changed=True)
    assert post(client, checked)["rows_synced"] == 100
    found_unchanged(client, checked)
    versions = statuses(client, kind.schema)

    again = post(client, checked)
    assert again["unchanged"] is True
    assert again["rows_synced"] == 0
    assert statuses(client, kind.schema) == versions  # nothing written
    info = table_info(client, "src", kind.schema, "t")
    assert info["last_success_at"] >= info["versions"][0]["finished_at"]

    kind.execute(f"INSERT INTO {kind.quote('t')} VALUES (101)")
    changed = post(client, checked)
    assert "unchanged" not in changed
    assert changed["rows_synced"] == 101


def test_a_tables_check_sql_decides_instead_of_the_fingerprint(
    client: FlaskClient, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 10) g")
    register(client, "src", "postgres", pg_source.config())
    check = {"check_sql": "select count(*), max(id) from public.t"}
    response = client.put("/connections/src/tables/public/t/settings", json=check)
    assert response.status_code == 200, response.get_json()
    checked = {"connection_id": "src", "schema_name": "public", "table_name": "t", "data": True}
    checked["if_changed"] = True

    assert post(client, checked)["rows_synced"] == 10
    assert post(client, checked)["unchanged"] is True  # the check's row is its fingerprint
    with postgres.connect(pg_source) as conn:
        conn.execute("INSERT INTO t VALUES (11)")
    assert post(client, checked)["rows_synced"] == 11


def test_a_failing_check_sql_fails_the_refresh_and_writes_nothing(
    client: FlaskClient, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 10) g")
    register(client, "src", "postgres", pg_source.config())
    check = {"check_sql": "select max(id) from public.gone"}
    assert client.put("/connections/src/tables/public/t/settings", json=check).status_code == 200
    request = {"connection_id": "src", "schema_name": "public", "table_name": "t", "data": True}

    message = assert_error(
        client.post("/refresh", json={**request, "if_changed": True}), 502, "SOURCE_UNAVAILABLE"
    )
    assert "gone" in message
    assert statuses(client, "public") == []
    assert post(client, request)["rows_synced"] == 10  # without if_changed no check runs


@pytest.fixture
def hundred(client: FlaskClient, postgres: PostgresServer, pg_source: Database) -> str:
    """Table t of 100 rows, cached; returns its current path."""
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g")
    register(client, "src", "postgres", pg_source.config())
    refresh(client, "src", "public", "t")
    return table_info(client, "src", "public", "t")["current_path"]


@both_catalogs  # publishing is one statement on PostgreSQL, steps on SQLite
def test_an_emptied_source_is_held_and_force_publishes_it(
    client: FlaskClient, postgres: PostgresServer, pg_source: Database, hundred: str
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("TRUNCATE t")
    request = {"connection_id": "src", "schema_name": "public", "table_name": "t", "data": True}

    held = post(client, request)
    assert held["held"] is True
    assert held["rows_synced"] == 0
    [warning] = held["warnings"]
    assert (warning["schema_name"], warning["table_name"]) == ("public", "t")
    assert "0 rows where the current one has 100" in warning["message"]
    assert '"force": true' in warning["message"]
    info = table_info(client, "src", "public", "t")
    assert info["current_path"] == hundred
    assert [v["status"] for v in info["versions"]] == ["held", "current"]
    assert info["versions"][0]["error"] == warning["message"]
    # The held directory is queued for deletion after the grace period, like a superseded one.
    assert scrape(client)["refresh_pending_deletions", labels()] == 1

    forced = post(client, {**request, "force": True})
    assert "held" not in forced
    assert forced["rows_synced"] == 0
    assert statuses(client, "public") == ["current", "held", "superseded"]


@both_catalogs  # publishing is one statement on PostgreSQL, steps on SQLite
def test_a_drop_below_the_tables_ratio_is_held(
    client: FlaskClient, postgres: PostgresServer, pg_source: Database, hundred: str
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("DELETE FROM t WHERE id > 5")
    request = {"connection_id": "src", "schema_name": "public", "table_name": "t", "data": True}
    assert post(client, request)["held"] is True  # 5 < 0.1 x 100

    ratio = {"hold_below_ratio": 0.01}
    assert client.put("/connections/src/tables/public/t/settings", json=ratio).status_code == 200
    published = post(client, request)  # 5 >= 0.01 x 100
    assert "held" not in published
    assert published["rows_synced"] == 5


def test_a_connection_refresh_counts_unchanged_and_held_tables(
    client: FlaskClient, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        for name in ("a", "b", "c"):
            conn.execute(f"CREATE TABLE {name} AS SELECT g AS id FROM generate_series(1, 20) g")
    register(client, "src", "postgres", pg_source.config())
    checked = {"connection_id": "src", "data": True, "include_uncached": True, "if_changed": True}
    assert wait_for_job(client, submit(client, checked))["result"]["tables_refreshed"] == 3

    def all_unchanged() -> bool:
        return wait_for_job(client, submit(client, checked))["result"].get("tables_unchanged") == 3

    wait_until(all_unchanged, SETTLE_SECONDS, "the tables were never all found unchanged")
    with postgres.connect(pg_source) as conn:
        conn.execute("INSERT INTO a VALUES (21)")
        conn.execute("TRUNCATE b")
    result = wait_for_job(client, submit(client, checked))["result"]

    assert result["tables_refreshed"] == 2  # a copied, c unchanged
    assert result["tables_unchanged"] == 1
    assert result["tables_held"] == 1  # b emptied
    assert result["tables_failed"] == 0
    assert result["total_rows"] == 21
    assert [w["table_name"] for w in result["warnings"]] == ["b"]


def test_the_table_view_and_metrics_follow_refreshes(
    client: FlaskClient, postgres: PostgresServer, pg_source: Database, hundred: str
) -> None:
    request = {"connection_id": "src", "schema_name": "public", "table_name": "t", "data": True}
    with postgres.connect(pg_source) as conn:  # does not fit decimal128(38, 9)
        conn.execute("ALTER TABLE t ADD COLUMN v numeric")
        conn.execute("UPDATE t SET v = 1e30 WHERE id = 1")
    for failures in (1, 2):
        assert_error(client.post("/refresh", json=request), 502, "SOURCE_UNAVAILABLE")
        info = table_info(client, "src", "public", "t")
        assert info["consecutive_failures"] == failures
        assert info["last_checked_at"] > info["last_success_at"]
    with postgres.connect(pg_source) as conn:
        conn.execute("UPDATE t SET v = 1 WHERE id = 1")
    post(client, request)
    info = table_info(client, "src", "public", "t")
    assert info["consecutive_failures"] == 0
    assert info["last_success_at"] == info["last_checked_at"]

    samples = scrape(client)
    table = {"connection": "src", "schema": "public", "table": "t"}
    for outcome, count in (("published", 2), ("failed", 2), ("unchanged", 0), ("held", 0)):
        assert samples["refresh_table_refreshes_total", labels(**table, outcome=outcome)] == count
    assert samples["refresh_table_consecutive_failures", labels(**table)] == 0
