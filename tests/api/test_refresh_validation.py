"""``POST /refresh`` body validation: field types, unknown fields, and the ordered rule table."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.support.api import assert_error, post_connection


@pytest.fixture
def known(client: FlaskClient, tmp_path: Path) -> str:
    """A registered connection, so the rules after the 404 check can be reached."""
    config = {"path": str(tmp_path / "src.sqlite")}
    response = post_connection(client, "known", "sqlite", config, skip_discovery=True)
    assert response.status_code == 201
    return "known"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"schema_name": "public"}, 400, "schema_name requires connection_id"),
        ({"schema_name": "public", "data": True}, 400, "schema_name requires connection_id"),
        ({"connection_id": "known", "table_name": "t"}, 400, "table_name requires schema_name"),
        ({"table_name": "t"}, 400, "table_name requires schema_name"),
        ({"data": True}, 400, "data refresh requires connection_id"),
        ({"data": True, "table_name": "t"}, 400, "table_name requires schema_name"),
        ({"connection_id": "ghost"}, 404, "Connection 'ghost' not found"),
        (
            {"connection_id": "ghost", "schema_name": "public"},
            404,
            "Connection 'ghost' not found",
        ),
        (
            {"connection_id": "known", "schema_name": "public"},
            400,
            "schema-level refresh not supported; omit schema_name to refresh entire connection",
        ),
        (
            {"connection_id": "known", "schema_name": "public", "data": True},
            400,
            "data refresh with schema_name requires table_name",
        ),
        (
            {"connection_id": "known", "schema_name": "public", "table_name": "t"},
            400,
            "schema refresh cannot target specific tables; use data: true for table data refresh",
        ),
        (
            {"connection_id": "known", "schema_name": "main", "table_name": "t", "data": True},
            404,
            "table not found: main.t (connection known)",
        ),
    ],
)
def test_rules_in_order(
    client: FlaskClient, known: str, body: dict, status: int, message: str
) -> None:
    code = "NOT_FOUND" if status == 404 else "BAD_REQUEST"
    assert_error(client.post("/refresh", json=body), status, code, message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": "yes"}, "data: Not a valid boolean."),
        ({"data": 1}, "data: Not a valid boolean."),
        ({"include_uncached": "true"}, "include_uncached: Not a valid boolean."),
        ({"async": 0}, "async: Not a valid boolean."),
        ({"connection_id": 5}, "connection_id: Not a valid string."),
        ({"connection_id": None}, "connection_id: Field may not be null."),
        ({"schema_name": ["public"]}, "schema_name: Not a valid string."),
        ({"table_name": {}}, "table_name: Not a valid string."),
        ({"include_uncache": True}, "include_uncache: Unknown field."),
    ],
)
def test_wrong_types_and_unknown_fields_name_the_field(
    client: FlaskClient, body: dict, message: str
) -> None:
    assert_error(client.post("/refresh", json=body), 400, "BAD_REQUEST", message)


def test_include_uncached_outside_connection_data_refresh_is_400(
    client: FlaskClient, known: str
) -> None:
    message = assert_error(
        client.post("/refresh", json={"connection_id": known, "include_uncached": True}),
        400,
        "BAD_REQUEST",
    )
    assert "include_uncached applies only to a connection-wide data refresh" in message


@pytest.mark.parametrize("flag", ["if_changed", "force"])
@pytest.mark.parametrize("body", [{}, {"connection_id": "known"}])
def test_change_flags_outside_a_data_refresh_are_400(
    client: FlaskClient, known: str, flag: str, body: dict
) -> None:
    message = assert_error(client.post("/refresh", json={**body, flag: True}), 400, "BAD_REQUEST")
    assert message == f"{flag} applies only to a data refresh (data: true)"


def test_if_changed_and_force_together_are_400(client: FlaskClient, known: str) -> None:
    body = {"connection_id": known, "data": True, "if_changed": True, "force": True}
    message = assert_error(client.post("/refresh", json=body), 400, "BAD_REQUEST")
    assert "send one of them" in message


@pytest.mark.parametrize("flag", ["if_changed", "force"])
def test_change_flags_are_strict_booleans(client: FlaskClient, flag: str) -> None:
    body = {"connection_id": "known", "data": True, flag: "true"}
    assert_error(
        client.post("/refresh", json=body), 400, "BAD_REQUEST", f"{flag}: Not a valid boolean."
    )
