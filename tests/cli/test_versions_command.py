"""``flask refresh versions`` (and ``jobs`` in embedded mode) through Click's runner."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import update

from config import Settings
from refresh.catalog import PendingDeletion, utcnow
from refresh.cli.jobs_command import EMBEDDED
from refresh.runtime import Runtime
from tests.support.api import refresh, register, table_info
from tests.support.cli import BROKEN_ERROR_START, fill_shop, invoke
from tests.support.deletions import pending
from tests.support.services import Database, PostgresServer


def test_each_version_is_shown_with_its_status_and_its_deletion(
    client: FlaskClient,
    settings: Settings,
    rt: Runtime,
    postgres: PostgresServer,
    pg_source: Database,
) -> None:
    fill_shop(postgres, pg_source, broken=True)
    register(client, "shop", "postgres", pg_source.config())
    refresh(client, "shop", "public", "orders")
    refresh(client, "shop", "public", "orders")
    body = {"connection_id": "shop", "schema_name": "public", "table_name": "broken", "data": True}
    assert client.post("/refresh", json=body).status_code == 502
    current, superseded = table_info(client, "shop", "public", "orders")["versions"]
    [failed] = table_info(client, "shop", "public", "broken")["versions"]
    due = pending(rt)[superseded["path"]].delete_after

    result = invoke(settings, "versions", "--connection", "shop")

    assert (result.exit_code, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert [line for line in lines if not line.startswith(" ")] == [
        "public.broken (never cached)",
        "public.items (never cached)",
        f"public.orders (current: {current['version']})",
    ]
    by_version = {line.split()[0]: line for line in lines if line.startswith("  ")}
    assert by_version.keys() == {failed["version"], current["version"], superseded["version"]}
    assert by_version[failed["version"]].split()[1] == "failed"
    assert f"error: {BROKEN_ERROR_START}" in by_version[failed["version"]]
    assert by_version[current["version"]].split()[1:4] == ["current", "1,000", "rows,"]
    assert ", full  started " in by_version[current["version"]]
    assert "pending deletion" not in by_version[current["version"]]
    assert by_version[superseded["version"]].split()[1] == "superseded"
    assert by_version[superseded["version"]].endswith(
        f"pending deletion, due {due:%Y-%m-%d %H:%M:%S} UTC"
    )

    # Once its deletion has run, the superseded version is left out unless --all is given.
    with rt.catalog.session() as session:
        session.execute(update(PendingDeletion).values(delete_after=utcnow() - timedelta(1)))
    assert invoke(settings, "gc").exit_code == 0
    orders = ["versions", "--connection", "shop", "--table", "orders"]

    recent = invoke(settings, *orders).stdout.splitlines()
    everything = invoke(settings, *orders, "--all").stdout.splitlines()

    assert [line.split()[0] for line in recent] == ["public.orders", current["version"]]
    assert [line.split()[:2] for line in everything[1:]] == [
        [current["version"], "current"],
        [superseded["version"], "deleted"],
    ]


def test_an_incremental_version_says_how_it_was_made_and_up_to_where(
    client: FlaskClient, settings: Settings, postgres: PostgresServer, pg_source: Database
) -> None:
    fill_shop(postgres, pg_source)
    register(client, "shop", "postgres", pg_source.config())
    path = "/connections/shop/tables/public/orders/settings"
    answer = client.put(path, json={"refresh_mode": "append", "cursor_column": "id"})
    assert answer.status_code == 200, answer.get_json()
    refresh(client, "shop", "public", "orders")  # the first refresh is full
    with postgres.connect(pg_source) as conn:
        conn.execute("INSERT INTO orders SELECT g, 'row ' || g FROM generate_series(1001, 1010) g")
    refresh(client, "shop", "public", "orders")

    result = invoke(settings, "versions", "--connection", "shop", "--table", "orders")

    appended, first = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert "1,010 rows, " in appended
    assert ", append to 1010  started " in appended
    assert ", full to 1000  started " in first


def test_an_unknown_connection_exits_2(settings: Settings, rt: Runtime) -> None:
    # rt: the catalog exists, migrated.
    result = invoke(settings, "versions", "--connection", "nope")

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "error: Connection 'nope' not found\n"


def test_jobs_says_why_it_sees_none_in_embedded_mode(settings: Settings, rt: Runtime) -> None:
    result = invoke(settings, "jobs")

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: {EMBEDDED}\n"
