"""Registry and config schemas: strict fields, defaults, secrets split off."""

from __future__ import annotations

from pathlib import Path

import pytest
from marshmallow import ValidationError

from refresh.common.errors import Misconfigured
from refresh.sources import SOURCE_TYPES, build_source, source_class
from refresh.sources.config import ConfigContext
from refresh.sources.postgres import PostgresSource

SERVER = {"host": "db.example", "user": "app", "database": "sales"}


def test_registry_knows_every_source_type() -> None:
    assert set(SOURCE_TYPES) == {"postgres", "mysql", "sqlite", "duckdb", "sqlalchemy"}
    assert all(source_class(name).source_type == name for name in SOURCE_TYPES)
    source = build_source("postgres", SERVER, "pw", connect_timeout=3)
    assert isinstance(source, PostgresSource)
    assert (source.password, source.connect_timeout) == ("pw", 3)


def test_unknown_source_type_is_misconfigured_naming_the_known_ones() -> None:
    with pytest.raises(Misconfigured, match=r"unknown source type 'oracle'.*postgres"):
        source_class("oracle")


@pytest.mark.parametrize(("source_type", "port"), [("postgres", 5432), ("mysql", 3306)])
def test_server_config_defaults_and_splits_the_password(source_type: str, port: int) -> None:
    cls = source_class(source_type)
    config = cls.config_schema().load({**SERVER, "password": "pw", "schemas": ["a", "b"]})

    stored, password = cls.split_secret(config)

    assert stored == {**SERVER, "port": port, "schemas": ["a", "b"]}
    assert password == "pw"
    assert cls.config_schema().load({**SERVER, "password": None})["password"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"port": True}, "port"),
        ({"port": "5432"}, "port"),
        ({"port": 5432.0}, "port"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"host": 5}, "host"),
        ({"host": ""}, "host"),
        ({"user": None}, "user"),
        ({"database": ["sales"]}, "database"),
        ({"password": 1234}, "password"),
        ({"schemas": []}, "schemas"),
        ({"schemas": [""]}, "schemas"),
        ({"schemas": "public"}, "schemas"),
        ({"sslmode": "require"}, "sslmode"),
    ],
)
@pytest.mark.parametrize("source_type", ["postgres", "mysql"])
def test_server_config_is_strict(source_type: str, change: dict, field: str) -> None:
    with pytest.raises(ValidationError) as error:
        source_class(source_type).config_schema().load({**SERVER, **change})

    assert set(error.value.messages) == {field}


@pytest.mark.parametrize("source_type", ["postgres", "mysql"])
def test_server_config_requires_host_user_database(source_type: str) -> None:
    with pytest.raises(ValidationError) as error:
        source_class(source_type).config_schema().load({})

    assert set(error.value.messages) == {"host", "user", "database"}


@pytest.mark.parametrize("source_type", ["sqlite", "duckdb"])
def test_file_config_stores_an_absolute_path_inside_file_sources_dir(
    source_type: str, tmp_path: Path
) -> None:
    schema = source_class(source_type).config_schema()

    with ConfigContext({"file_sources_dir": tmp_path}):
        assert schema.load({"path": "data/app.db"}) == {"path": str(tmp_path / "data/app.db")}
        for bad in ({}, {"path": ""}, {"path": 3}, {"path": "x", "url": "y"}, {"path": "/x"}):
            with pytest.raises(ValidationError):
                schema.load(bad)


def test_file_config_cannot_be_validated_without_the_settings() -> None:
    with pytest.raises(LookupError):
        source_class("sqlite").config_schema().load({"path": "/srv/app.db"})
