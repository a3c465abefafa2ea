"""``flask refresh ...`` as a real process: the virtualenv's ``flask``, started from the
repository root with the service's environment, as an operator's shell or cron starts it."""

from __future__ import annotations

import json
import re

import pytest
from flask.testing import FlaskClient

from tests.support.api import register
from tests.support.cli import BROKEN_ERROR_START, fill_shop, run_flask
from tests.support.services import Database, PostgresServer


@pytest.fixture
def shop(client: FlaskClient, postgres: PostgresServer, pg_source: Database) -> Database:
    fill_shop(postgres, pg_source, broken=True)
    register(client, "shop", "postgres", pg_source.config())
    return pg_source


def test_the_commands_are_found_from_the_repository_root(environ: dict[str, str]) -> None:
    result = run_flask(environ, "--help")

    assert result.status == 0, result.stderr
    listed = result.stdout.split("Commands:")[1].splitlines()
    assert [line.split()[0] for line in listed if line.strip()] == ["gc", "jobs", "run", "versions"]


def test_a_session_from_the_shell(
    client: FlaskClient, environ: dict[str, str], shop: Database
) -> None:
    everything = ["run", "--connection", "shop", "--data", "--include-uncached"]

    refreshed = run_flask(environ, *everything)

    assert (refreshed.status, refreshed.stderr) == (1, "")  # one table failed
    lines = refreshed.stdout.splitlines()
    assert [line.split(" ", 1)[0] for line in lines[:3]] == ["[1/3]", "[2/3]", "[3/3]"]
    ended = {re.sub(r"^\[\d/3\] |\(\d+\.\d s\)$", "", line) for line in lines[:3]}
    assert {line for line in ended if "broken" not in line} == {
        "public.items: 50 rows ",
        "public.orders: 1,000 rows ",
    }
    assert lines[3].startswith("shop: 2 tables refreshed, 1 failed, 1,050 rows in ")
    assert lines[4].startswith(f"  failed: public.broken: {BROKEN_ERROR_START}")

    one = ["--connection", "shop", "--schema", "public", "--table", "orders", "--data"]
    as_json = run_flask(environ, "run", *one, "--json")
    body = {"connection_id": "shop", "schema_name": "public", "table_name": "orders", "data": True}
    api = client.post("/refresh", json=body)

    assert (as_json.status, as_json.stderr) == (0, "")
    answered = json.loads(as_json.stdout)
    assert answered.pop("duration_ms") >= 0
    assert answered == {k: v for k, v in api.get_json().items() if k != "duration_ms"}

    invalid = run_flask(environ, "run", "--connection", "shop", "--schema", "public")

    assert (invalid.status, invalid.stdout) == (2, "")
    assert invalid.stderr == (
        "error: schema-level refresh not supported; omit schema_name to refresh entire connection\n"
    )

    versions = run_flask(environ, "versions", "--connection", "shop", "--table", "orders")

    assert versions.status == 0
    heading, newest, older, oldest = versions.stdout.splitlines()
    assert heading.startswith("public.orders (current: ")
    assert newest.split()[1] == "current"
    assert [older.split()[1], oldest.split()[1]] == ["superseded", "superseded"]
    assert "pending deletion, due " in older

    gc = run_flask(environ, "gc", "--dry-run")

    assert gc.status == 0
    assert gc.stdout.startswith("0 due now; 2 in their grace period, the next due ")


def test_on_a_terminal_the_progress_is_a_bar(environ: dict[str, str], shop: Database) -> None:
    tables = ["--connection", "shop", "--data", "--include-uncached"]

    result = run_flask(environ, "run", *tables, terminal=True)

    assert result.status == 1
    bar, summary, failure = result.stdout.split("\r\n")[:3]
    first, *_, last = bar.split("\r\x1b[K")[1:]
    assert first == "[--------------------] 0/3 tables, 0 rows, 0.0 s"
    assert re.fullmatch(r"\[#{20}\] 3/3 tables, 1 failed, 1,050 rows, \d+\.\d s", last)
    assert summary.startswith("shop: 2 tables refreshed, 1 failed")
    assert failure.startswith("  failed: public.broken")
