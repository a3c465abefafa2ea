"""``sqlite`` and ``duckdb`` files (and SQLite URLs) are confined to FILE_SOURCES_DIR (issue 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.support.api import assert_error, post_connection, refresh, register
from tests.support.file_sources import make_file_source


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    directory = tmp_path / "sources"
    directory.mkdir()
    return directory


@pytest.fixture
def environ(environ: dict[str, str], sources: Path) -> dict[str, str]:
    return {**environ, "FILE_SOURCES_DIR": str(sources)}


def make_file(source_type: str, path: Path) -> None:
    make_file_source(source_type, path, "CREATE TABLE t (id integer)")


def refused(client: FlaskClient, source_type: str, config: dict[str, str]) -> str:
    response = post_connection(client, "outside", source_type, config)
    message = assert_error(response, 400, "BAD_REQUEST")
    assert client.get("/connections").get_json() == {"connections": []}
    return message


@pytest.mark.parametrize("source_type", ["sqlite", "duckdb"])
def test_a_file_outside_is_400_naming_the_setting_whether_it_exists_or_not(
    client: FlaskClient, source_type: str, sources: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.db"
    make_file(source_type, outside)
    (sources / "link").symlink_to(outside)

    messages = {
        refused(client, source_type, {"path": path})
        for path in (
            str(outside),
            str(tmp_path / "missing.db"),
            "/etc/passwd",
            "../outside.db",
            f"{sources}/../outside.db",
            "link",  # a symlink inside that points outside
        )
    }

    assert messages == {
        f"config.path: must be inside FILE_SOURCES_DIR ({sources}); put the file there or "
        "change FILE_SOURCES_DIR"
    }


@pytest.mark.parametrize("source_type", ["sqlite", "duckdb"])
def test_a_file_inside_registers_under_its_resolved_path(
    client: FlaskClient, source_type: str, sources: Path
) -> None:
    (sources / "shop").mkdir()
    make_file(source_type, sources / "shop" / "data.db")
    (sources / "current").symlink_to(sources / "shop")

    for name, path in (("relative", "shop/data.db"), ("linked", str(sources / "current/data.db"))):
        response = post_connection(client, name, source_type, {"path": path})
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["tables_discovered"] == 1
        shown = client.get(f"/connections/{name}").get_json()["config"]
        assert shown == {"path": str(sources / "shop" / "data.db")}


@pytest.mark.parametrize(
    ("source_type", "config", "message"),
    [
        # Refused with any text of the body (refresh/api/parsing.py).
        ("sqlite", {"path": "a\x00b"}, "config.path: not valid text (holds a NUL character)"),
        # Percent-encoded in a URL, the NUL appears once the URL is parsed.
        ("sqlalchemy", {"url": "sqlite:///a%00b"}, "config.url: must not contain a NUL character"),
    ],
)
def test_a_nul_character_in_the_path_is_400(
    client: FlaskClient, sources: Path, source_type: str, config: dict[str, str], message: str
) -> None:
    assert refused(client, source_type, config) == message


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////etc/passwd",
        "sqlite+pysqlite:///../outside.db",
        "sqlite:///file:/etc/passwd?mode=ro&uri=true",
    ],
)
def test_a_sqlite_url_outside_is_400_too(client: FlaskClient, sources: Path, url: str) -> None:
    message = refused(client, "sqlalchemy", {"url": url})
    assert message.startswith("config.url: "), message
    assert "/etc/passwd" not in message


def test_a_sqlite_url_inside_registers_with_its_absolute_path(
    client: FlaskClient, sources: Path
) -> None:
    make_file("sqlite", sources / "app.db")

    response = post_connection(client, "lite_url", "sqlalchemy", {"url": "sqlite:///app.db"})

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["tables_discovered"] == 1
    shown = client.get("/connections/lite_url").get_json()["config"]
    assert shown == {"url": f"sqlite:///{sources}/app.db"}


def test_a_duckdb_file_reaches_no_file_beyond_itself(
    client: FlaskClient, sources: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("word\nswordfish\n")
    make_file_source(
        "duckdb",
        sources / "views.duckdb",
        f"CREATE VIEW leak AS SELECT * FROM read_csv('{secret}')",
        "CREATE TABLE t AS SELECT 1 AS id",
    )
    register(client, "duck", "duckdb", {"path": "views.duckdb"})

    body = {"connection_id": "duck", "schema_name": "main", "data": True}
    assert refresh(client, "duck", "main", "t")["rows_synced"] == 1
    leaked = client.post("/refresh", json={**body, "table_name": "leak"})
    assert "disabled" in assert_error(leaked, 502, "SOURCE_UNAVAILABLE")


def test_a_sqlite_file_opened_as_duckdb_fetches_no_extension(
    client: FlaskClient, sources: Path
) -> None:
    make_file("sqlite", sources / "lite.db")

    response = post_connection(client, "duck", "duckdb", {"path": "lite.db"})

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["discovery_status"] == "failed"
    # Not "Failed to download extension sqlite_scanner at URL http://extensions.duckdb.org/...".
    assert "extensions is disabled" in response.get_json()["discovery_error"]
