"""Applying the real Alembic migrations to a test catalog."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from refresh.catalog import Catalog

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(catalog: Catalog) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    return config


def migrate(catalog: Catalog, revision: str = "head") -> None:
    config = alembic_config(catalog)
    with catalog.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
