"""The catalog database: models, engine and sessions."""

from refresh.catalog.database import Catalog, PinnedCatalog, insert_ignoring
from refresh.catalog.models import (
    ONE_WRITER,
    Base,
    Connection,
    PendingDeletion,
    Schedule,
    Table,
    TableSettings,
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
    "Schedule",
    "Table",
    "TableSettings",
    "TableVersion",
    "VersionStatus",
    "insert_ignoring",
    "utcnow",
]
