"""The catalog database: models, engine and sessions."""

from refresh.catalog.database import Catalog
from refresh.catalog.models import (
    Base,
    Connection,
    PendingDeletion,
    Table,
    TableVersion,
    VersionStatus,
    utcnow,
)

__all__ = [
    "Base",
    "Catalog",
    "Connection",
    "PendingDeletion",
    "Table",
    "TableVersion",
    "VersionStatus",
    "utcnow",
]
