"""``PUT|GET /connections/{id}/tables/{schema}/{table}/settings``."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.support.api import assert_error
from tests.support.freshness import sqlite_source

SETTINGS = "/connections/src/tables/main/t/settings"
DEFAULTS = {"check_sql": None, "hold_below_ratio": 0.1, "max_staleness_seconds": None}


@pytest.fixture
def source(client: FlaskClient, tmp_path: Path) -> str:
    return sqlite_source(client, tmp_path / "src.sqlite")


def test_a_table_never_set_has_the_defaults(client: FlaskClient, source: str) -> None:
    response = client.get(SETTINGS)
    assert response.status_code == 200
    assert response.get_json() == DEFAULTS


def test_put_changes_the_fields_it_names_and_answers_with_all(
    client: FlaskClient, source: str
) -> None:
    first = client.put(SETTINGS, json={"max_staleness_seconds": 3600})
    assert first.status_code == 200, first.get_json()
    assert first.get_json() == {**DEFAULTS, "max_staleness_seconds": 3600}

    check = "select max(id), count(*) from main.t"
    second = client.put(SETTINGS, json={"check_sql": check, "hold_below_ratio": 0.5})
    expected = {"check_sql": check, "hold_below_ratio": 0.5, "max_staleness_seconds": 3600}
    assert second.get_json() == expected
    assert client.get(SETTINGS).get_json() == expected

    cleared = client.put(SETTINGS, json={"check_sql": None, "max_staleness_seconds": None})
    assert cleared.get_json() == {**DEFAULTS, "hold_below_ratio": 0.5}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"hold_below_ratio": 1.5}, "hold_below_ratio: Must be greater than or equal to 0 and "),
        ({"hold_below_ratio": -0.1}, "hold_below_ratio: Must be greater than or equal to 0 and "),
        ({"hold_below_ratio": "0.5"}, "hold_below_ratio: Not a valid number."),
        ({"hold_below_ratio": True}, "hold_below_ratio: Not a valid number."),
        ({"hold_below_ratio": None}, "hold_below_ratio: Field may not be null."),
        ({"max_staleness_seconds": 0}, "max_staleness_seconds: Must be greater than or equal to 1"),
        ({"max_staleness_seconds": 1.5}, "max_staleness_seconds: Not a valid integer."),
        ({"check_sql": 5}, "check_sql: Not a valid string."),
        ({"refresh_every": 5}, "refresh_every: Unknown field."),
    ],
)
def test_wrong_values_and_unknown_fields_are_400_naming_the_field(
    client: FlaskClient, source: str, body: dict, message: str
) -> None:
    found = assert_error(client.put(SETTINGS, json=body), 400, "BAD_REQUEST")
    assert found.startswith(message)
    assert client.get(SETTINGS).get_json() == DEFAULTS


@pytest.mark.parametrize(
    ("check_sql", "why"),
    [
        ("select * from main.t", "must return one row"),
        ("select id from main.t group by id", "must return one row"),
        ("select count(*) over () from main.t", "must return one row"),
        ("select 1; select 2", "must be exactly one statement"),
        ("delete from main.t", "must be a SELECT"),
        ("select 1 union select 2", "must be a SELECT"),
        ("pragma writable_schema = 1", "must be a SELECT"),
        ("select count(*) into copy from main.t", "must only read"),
        ("with gone as (delete from t returning id) select count(*) from gone", "must only read"),
        ("selec 1", "cannot be parsed as SQL"),
        ("", "must be exactly one statement"),
    ],
)
def test_a_check_that_is_not_a_one_row_select_is_400(
    client: FlaskClient, source: str, check_sql: str, why: str
) -> None:
    message = assert_error(client.put(SETTINGS, json={"check_sql": check_sql}), 400, "BAD_REQUEST")
    assert message.startswith(f"check_sql: {why}")
    assert client.get(SETTINGS).get_json() == DEFAULTS


@pytest.mark.parametrize(
    "check_sql",
    [
        "select max(id), count(*) from main.t",
        "select id from main.t order by id desc limit 1",
        "select (select count(*) from main.t)",
        "with x as (select id from main.t) select sum(id) from x",
    ],
)
def test_one_row_selects_are_accepted(client: FlaskClient, source: str, check_sql: str) -> None:
    response = client.put(SETTINGS, json={"check_sql": check_sql})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["check_sql"] == check_sql


def test_unknown_table_or_connection_is_404(client: FlaskClient, source: str) -> None:
    assert_error(
        client.get("/connections/src/tables/main/nope/settings"),
        404,
        "NOT_FOUND",
        "table not found: main.nope (connection src)",
    )
    assert_error(
        client.put("/connections/ghost/tables/main/t/settings", json={}),
        404,
        "NOT_FOUND",
        "Connection 'ghost' not found",
    )
