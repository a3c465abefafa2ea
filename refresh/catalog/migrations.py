"""Applying the Alembic migrations from code (tests, benchmarks); operators run ``alembic``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from refresh.catalog.database import Catalog

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def alembic_config() -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["configure_logger"] = False
    return config


def upgrade(catalog: Catalog, revision: str = "head") -> None:
    config = alembic_config()
    with catalog.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
