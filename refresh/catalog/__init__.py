"""The catalog database: models, engine and sessions."""

from refresh.catalog.database import Catalog
from refresh.catalog.models import (
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
    "Base",
    "Catalog",
    "Connection",
    "PendingDeletion",
    "Schedule",
    "Table",
    "TableSettings",
    "TableVersion",
    "VersionStatus",
    "utcnow",
]
