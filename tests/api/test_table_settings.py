"""``PUT|GET /connections/{id}/tables/{schema}/{table}/settings``."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.support.api import assert_error, register
from tests.support.file_sources import make_file_source
from tests.support.freshness import sqlite_source

SETTINGS = "/connections/src/tables/main/t/settings"
DEFAULTS = {
    "check_sql": None,
    "hold_below_ratio": 0.1,
    "max_staleness_seconds": None,
    "refresh_mode": "full",
    "cursor_column": None,
    "primary_key": None,
    "cursor_overlap": 0.0,
    "full_refresh_every_seconds": None,
}
WIDE = "/connections/wide/tables/main/w/settings"


@pytest.fixture
def source(client: FlaskClient, tmp_path: Path) -> str:
    return sqlite_source(client, tmp_path / "src.sqlite")


@pytest.fixture
def wide(client: FlaskClient, tmp_path: Path) -> str:
    """Connection ``wide``: table ``main.w`` with a column of each kind a cursor may or may not
    be."""
    path = make_file_source(
        "sqlite",
        tmp_path / "wide.sqlite",
        "CREATE TABLE w (id INTEGER, at TIMESTAMP, day DATE, note TEXT, ratio REAL)",
    )
    register(client, "wide", "sqlite", {"path": str(path)})
    return "wide"


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
    expected = {
        **DEFAULTS,
        "check_sql": check,
        "hold_below_ratio": 0.5,
        "max_staleness_seconds": 3600,
    }
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


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"refresh_mode": "upsert"}, "refresh_mode: Must be one of: full, append, merge."),
        ({"refresh_mode": "append"}, "cursor_column is required for refresh_mode append"),
        ({"refresh_mode": "merge"}, "cursor_column is required for refresh_mode merge"),
        (
            {"refresh_mode": "append", "cursor_column": "nope"},
            "cursor_column 'nope' is not a column of the table",
        ),
        (
            {"refresh_mode": "append", "cursor_column": "note"},
            "cursor_column 'note' is string: a cursor must be an integer, date or timestamp column",
        ),
        (
            {"refresh_mode": "append", "cursor_column": "ratio"},
            "cursor_column 'ratio' is double: a cursor must be an integer, date or timestamp",
        ),
        (
            {"refresh_mode": "merge", "cursor_column": "id"},
            "primary_key is required for refresh_mode merge",
        ),
        (
            {"refresh_mode": "merge", "cursor_column": "id", "primary_key": ["id", "gone"]},
            "primary_key column 'gone' is not a column of the table",
        ),
        (
            {"refresh_mode": "merge", "cursor_column": "id", "primary_key": ["id", "id"]},
            "primary_key names a column twice",
        ),
        ({"primary_key": []}, "primary_key: Shorter than minimum length 1."),
        ({"primary_key": "id"}, "primary_key: Not a valid list."),
        ({"cursor_overlap": -1}, "cursor_overlap: Must be greater than or equal to 0."),
        ({"cursor_overlap": "5"}, "cursor_overlap: Not a valid number."),
        ({"full_refresh_every_seconds": 0}, "full_refresh_every_seconds: Must be greater than"),
        ({"full_refresh_every_seconds": 1.5}, "full_refresh_every_seconds: Not a valid integer."),
    ],
)
def test_incremental_settings_are_checked_against_the_tables_columns(
    client: FlaskClient, wide: str, body: dict, message: str
) -> None:
    found = assert_error(client.put(WIDE, json=body), 400, "BAD_REQUEST")
    assert found.startswith(message), found
    assert client.get(WIDE).get_json() == DEFAULTS


@pytest.mark.parametrize("cursor", ["id", "at", "day"])
def test_integer_date_and_timestamp_columns_are_cursors(
    client: FlaskClient, wide: str, cursor: str
) -> None:
    body = {"refresh_mode": "append", "cursor_column": cursor, "cursor_overlap": 60}
    response = client.put(WIDE, json=body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {**DEFAULTS, **body, "cursor_overlap": 60.0}


def test_a_mode_set_field_by_field_is_checked_as_a_whole(client: FlaskClient, wide: str) -> None:
    assert client.put(WIDE, json={"cursor_column": "id", "primary_key": ["id"]}).status_code == 200
    merge = client.put(WIDE, json={"refresh_mode": "merge", "full_refresh_every_seconds": 86400})
    assert merge.status_code == 200, merge.get_json()
    assert merge.get_json() == {
        **DEFAULTS,
        "refresh_mode": "merge",
        "cursor_column": "id",
        "primary_key": ["id"],
        "full_refresh_every_seconds": 86400,
    }
    message = assert_error(client.put(WIDE, json={"cursor_column": None}), 400, "BAD_REQUEST")
    assert message == "cursor_column is required for refresh_mode merge"
    assert client.put(WIDE, json={"hold_below_ratio": 0.5}).status_code == 200
    assert client.get(WIDE).get_json()["refresh_mode"] == "merge"


def test_merge_defaults_to_the_primary_key_discovery_found_at_the_source(
    client: FlaskClient, tmp_path: Path
) -> None:
    path = make_file_source(
        "sqlite",
        tmp_path / "keyed.sqlite",
        "CREATE TABLE k (region TEXT, id INTEGER, at TIMESTAMP, PRIMARY KEY (id, region))",
    )
    register(client, "keyed", "sqlite", {"path": str(path)})
    assert client.get("/connections/keyed/tables/main/k").get_json()["primary_key"] == [
        "id",
        "region",
    ]

    merge = client.put(
        "/connections/keyed/tables/main/k/settings",
        json={"refresh_mode": "merge", "cursor_column": "at"},
    )

    assert merge.status_code == 200, merge.get_json()
    assert merge.get_json()["primary_key"] is None  # the source's key, whatever it becomes
