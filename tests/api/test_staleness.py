"""Freshness in the table views: ``last_success_at``, ``last_checked_at``,
``consecutive_failures``, ``stale``, and ``GET .../tables?stale=true``.

The refresh flow writes these columns; here they are set directly, as the flow would.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from refresh.catalog import utcnow
from refresh.runtime import Runtime
from tests.support.api import assert_error, table_info
from tests.support.freshness import set_table, sqlite_source
from tests.support.markers import both_catalogs


@pytest.fixture
def source(client: FlaskClient, tmp_path: Path) -> str:
    return sqlite_source(client, tmp_path / "src.sqlite", tables=("a", "b"))


def stale_names(client: FlaskClient, stale: str) -> list[str]:
    response = client.get(f"/connections/src/tables?stale={stale}")
    assert response.status_code == 200, response.get_json()
    return [t["table_name"] for t in response.get_json()["tables"]]


def test_a_table_without_a_staleness_bound_is_neither(client: FlaskClient, source: str) -> None:
    table = table_info(client, "src", "main", "a")
    assert table["stale"] is None
    assert table["last_success_at"] is None
    assert table["last_checked_at"] is None
    assert table["consecutive_failures"] == 0
    assert stale_names(client, "true") == []
    assert stale_names(client, "false") == []


@both_catalogs
def test_staleness_turns_true_and_back(client: FlaskClient, rt: Runtime, source: str) -> None:
    client.put("/connections/src/tables/main/a/settings", json={"max_staleness_seconds": 60})
    assert table_info(client, "src", "main", "a")["stale"] is True  # never confirmed fresh
    assert stale_names(client, "true") == ["a"]

    fresh = utcnow() - timedelta(seconds=30)
    set_table(rt, "src", "a", last_success_at=fresh, last_checked_at=fresh)
    table = table_info(client, "src", "main", "a")
    assert table["stale"] is False
    assert table["last_success_at"] == fresh.isoformat()
    assert stale_names(client, "true") == []
    assert stale_names(client, "false") == ["a"]

    old = utcnow() - timedelta(seconds=61)
    checked = utcnow()
    set_table(rt, "src", "a", last_success_at=old, last_checked_at=checked, consecutive_failures=2)
    [listed] = [
        t
        for t in client.get("/connections/src/tables").get_json()["tables"]
        if t["table_name"] == "a"
    ]
    assert listed["stale"] is True
    assert listed["consecutive_failures"] == 2
    assert listed["last_checked_at"] == checked.isoformat()
    assert stale_names(client, "true") == ["a"]

    client.put("/connections/src/tables/main/a/settings", json={"max_staleness_seconds": 3600})
    assert table_info(client, "src", "main", "a")["stale"] is False


@pytest.mark.parametrize("query", ["stale=yes", "stale=1", "fresh=true"])
def test_a_bad_query_is_400_naming_the_parameter(
    client: FlaskClient, source: str, query: str
) -> None:
    message = assert_error(client.get(f"/connections/src/tables?{query}"), 400, "BAD_REQUEST")
    assert message.startswith(query.split("=")[0] + ":")
