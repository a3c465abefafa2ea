"""The catalog database: models, engine and sessions."""

from refresh.catalog.database import Catalog, PinnedCatalog, insert_ignoring
from refresh.catalog.models import (
    ONE_WRITER,
    Base,
    Connection,
    PendingDeletion,
    Table,
    TableVersion,
    VersionStatus,
    utcnow,
)

__all__ = [
    "ONE_WRITER",
    "Base",
    "Catalog",
    "Connection",
    "PendingDeletion",
    "PinnedCatalog",
    "Table",
    "TableVersion",
    "VersionStatus",
    "insert_ignoring",
    "utcnow",
]
