"""``flask refresh run`` through Click's runner: the API's modes, checks and answers, carried out
in the command's own process."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from config import Settings
from tests.support.api import post_connection, refresh, register, table_info
from tests.support.cli import BROKEN_ERROR_START, SHOP, fill_shop, invoke
from tests.support.services import Database, PostgresServer


@pytest.fixture
def shop(client: FlaskClient, postgres: PostgresServer, pg_source: Database) -> Database:
    fill_shop(postgres, pg_source)
    register(client, "shop", "postgres", pg_source.config())
    return pg_source


def without_duration(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "duration_ms"}


MODES = {
    "every connection's schema": ({}, []),
    "one connection's schema": ({"connection_id": "shop"}, ["--connection", "shop"]),
    "one table's data": (
        {"connection_id": "shop", "schema_name": "public", "table_name": "orders", "data": True},
        ["--connection", "shop", "--schema", "public", "--table", "orders", "--data"],
    ),
    "a connection's data": (
        {"connection_id": "shop", "data": True, "include_uncached": True, "async": False},
        ["--connection", "shop", "--data", "--include-uncached"],
    ),
}


@pytest.mark.parametrize(("body", "args"), MODES.values(), ids=MODES.keys())
def test_json_is_the_body_the_api_answers(
    client: FlaskClient, settings: Settings, shop: Database, body: dict, args: list[str]
) -> None:
    api = client.post("/refresh", json=body)
    assert api.status_code == 200, api.get_json()

    result = invoke(settings, "run", *args, "--json")

    assert (result.exit_code, result.stderr) == (0, "")
    assert without_duration(json.loads(result.stdout)) == without_duration(api.get_json())


def test_a_connection_s_tables_are_refreshed_with_a_line_each(
    client: FlaskClient, settings: Settings, shop: Database
) -> None:
    result = invoke(settings, "run", "--connection", "shop", "--data", "--include-uncached")

    assert (result.exit_code, result.stderr) == (0, "")
    *progress, summary = result.stdout.splitlines()
    # Not a terminal: one plain line per table as it ends, in whatever order they end.
    assert [line.split(" ", 1)[0] for line in progress] == ["[1/2]", "[2/2]"]
    ended = [re.fullmatch(r"\[\d/2\] (.*) \(\d+\.\d s\)", line) for line in progress]
    assert sorted(match[1] for match in ended if match) == [
        "public.items: 50 rows",
        "public.orders: 1,000 rows",
    ]
    assert re.fullmatch(r"shop: 2 tables refreshed, 0 failed, 1,050 rows in \d+\.\d s", summary)
    for table in SHOP:
        assert table_info(client, "shop", "public", table)["synced"]


def test_a_failing_table_fails_the_command_and_not_the_others(
    client: FlaskClient, settings: Settings, postgres: PostgresServer, shop: Database
) -> None:
    with postgres.connect(shop) as conn:
        conn.execute("CREATE TABLE broken (v numeric)")
        conn.execute("INSERT INTO broken VALUES ('NaN')")
    assert client.post("/refresh", json={"connection_id": "shop"}).status_code == 200
    everything = ["run", "--connection", "shop", "--data", "--include-uncached"]

    result = invoke(settings, *everything)

    assert result.exit_code == 1
    failed = [line for line in result.stdout.splitlines() if "public.broken" in line]
    assert len(failed) == 2  # as it ended, and in the summary
    assert re.match(rf"\[\d/3\] public\.broken: failed: {BROKEN_ERROR_START}", failed[0])
    assert failed[1].startswith(f"  failed: public.broken: {BROKEN_ERROR_START}")
    assert "shop: 2 tables refreshed, 1 failed, 1,050 rows in " in result.stdout
    assert not table_info(client, "shop", "public", "broken")["synced"]
    assert table_info(client, "shop", "public", "orders")["synced"]

    as_json = invoke(settings, *everything, "--json")

    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert (body["tables_refreshed"], body["tables_failed"]) == (2, 1)
    [error] = body["errors"]
    assert (error["schema_name"], error["table_name"]) == ("public", "broken")
    assert error["error"].startswith(BROKEN_ERROR_START)


INVALID = {
    "schema without connection": (["--schema", "public"], {"schema_name": "public"}),
    "table without schema": (
        ["--connection", "shop", "--table", "orders"],
        {"connection_id": "shop", "table_name": "orders"},
    ),
    "data without connection": (["--data"], {"data": True}),
    "unknown connection": (["--connection", "nope"], {"connection_id": "nope"}),
    "schema-level refresh": (
        ["--connection", "shop", "--schema", "public"],
        {"connection_id": "shop", "schema_name": "public"},
    ),
    "data of a schema": (
        ["--connection", "shop", "--schema", "public", "--data"],
        {"connection_id": "shop", "schema_name": "public", "data": True},
    ),
    "schema refresh of a table": (
        ["--connection", "shop", "--schema", "public", "--table", "orders"],
        {"connection_id": "shop", "schema_name": "public", "table_name": "orders"},
    ),
    "uncached tables of a schema refresh": (
        ["--connection", "shop", "--include-uncached"],
        {"connection_id": "shop", "include_uncached": True},
    ),
    "a change check of a schema refresh": (
        ["--connection", "shop", "--if-changed"],
        {"connection_id": "shop", "if_changed": True},
    ),
    "a full refresh of a schema": (
        ["--connection", "shop", "--full"],
        {"connection_id": "shop", "full": True},
    ),
    "a change check both skipped and asked for": (
        ["--connection", "shop", "--data", "--if-changed", "--force"],
        {"connection_id": "shop", "data": True, "if_changed": True, "force": True},
    ),
    "unknown table": (
        ["--connection", "shop", "--schema", "public", "--table", "nope", "--data"],
        {"connection_id": "shop", "schema_name": "public", "table_name": "nope", "data": True},
    ),
}


@pytest.mark.parametrize(("args", "body"), INVALID.values(), ids=INVALID.keys())
def test_an_invalid_request_exits_2_with_the_api_s_message(
    client: FlaskClient, settings: Settings, shop: Database, args: list[str], body: dict
) -> None:
    api = client.post("/refresh", json=body)
    assert api.status_code in (400, 404)

    result = invoke(settings, "run", *args)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"error: {api.get_json()['error']['message']}\n"


def test_a_source_that_cannot_be_reached_exits_1(
    client: FlaskClient, settings: Settings, shop: Database
) -> None:
    down = {"host": "127.0.0.1", "port": 1, "user": "u", "database": "d", "password": "pw"}
    assert post_connection(client, "down", "postgres", down, skip_discovery=True).status_code == 201
    api = client.post("/refresh", json={"connection_id": "down"})
    assert api.status_code == 502

    one = invoke(settings, "run", "--connection", "down")

    assert one.exit_code == 1
    message = " ".join(api.get_json()["error"]["message"].split())  # on one line
    assert one.stderr == f"error: {message}\n"
    assert "pw" not in one.stderr

    every = invoke(settings, "run")  # the other connection is refreshed all the same

    assert every.exit_code == 1
    head, failure = every.stdout.splitlines()
    assert head == (
        "schema refresh: 1 connection refreshed, 1 failed; 2 tables discovered "
        "(0 added, 0 modified)"
    )
    assert failure.startswith("  failed: down: ")


def test_one_table_s_summary(settings: Settings, shop: Database) -> None:
    result = invoke(
        settings, "run", "--connection", "shop", "--schema", "public", "--table", "items", "--data"
    )

    assert result.exit_code == 0
    assert re.fullmatch(r"public\.items \(connection shop\): 50 rows in \d+\.\d s\n", result.stdout)


def test_a_version_the_hold_keeps_back_is_said_and_force_publishes_it(
    client: FlaskClient, settings: Settings, postgres: PostgresServer, shop: Database
) -> None:
    refresh(client, "shop", "public", "items")
    with postgres.connect(shop) as conn:
        conn.execute("DELETE FROM items")
    items = ["run", "--connection", "shop", "--schema", "public", "--table", "items", "--data"]

    held = invoke(settings, *items)

    assert (held.exit_code, held.stderr) == (0, "")  # neither refreshed nor failed
    head, warning = held.stdout.splitlines()
    assert re.fullmatch(r"public\.items \(connection shop\): held, not published in [\d.]+ s", head)
    assert warning.startswith("  warning: public.items: held, not published: ")
    assert table_info(client, "shop", "public", "items")["row_count"] == 50

    forced = invoke(settings, *items, "--force", "--json")

    assert forced.exit_code == 0
    assert without_duration(json.loads(forced.stdout)) == {
        "connection_id": "shop",
        "schema_name": "public",
        "table_name": "items",
        "refresh_mode": "full",
        "rows_synced": 0,
    }
    assert table_info(client, "shop", "public", "items")["row_count"] == 0
