"""Alembic environment: migrates the catalog of DATABASE_URL, or a connection a caller passes."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from config import load_settings
from refresh.catalog import Base, Catalog

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_migrations(connection: Connection) -> None:
    # Batch mode rebuilds SQLite tables for ALTERs SQLite cannot do in place.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    catalog = Catalog(load_settings().database_url)
    try:
        with catalog.engine.connect() as conn:
            run_migrations(conn)
    finally:
        catalog.dispose()
