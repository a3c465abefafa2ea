"""The catalog: which connections exist, what tables they have, and where each table's Parquet is.

The same models run on SQLite (embedded default) and PostgreSQL (production); Alembic migrations in
``migrations/`` create them, and a test checks the two never drift apart.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class VersionStatus(enum.StrEnum):
    """Where one data refresh attempt (a ``table_versions`` row) stands."""

    WRITING = "writing"  # being written; the row is the table's single-flight claim
    CURRENT = "current"  # the version ``tables.current_path`` points to
    SUPERSEDED = "superseded"  # replaced by a newer version or uncached; queued for deletion
    FAILED = "failed"  # the refresh failed; its directory was removed or queued for deletion
    DELETED = "deleted"  # the queued deletion removed its directory (``deleted_at``)
    # Deleting its directory failed MAX_DELETION_RETRIES times; the files stay, ``error`` says why.
    DELETION_FAILED = "deletion_failed"
    # Written but not published: it had no rows, or far fewer than the current version (the
    # table's ``hold_below_ratio``); the previous version stays current, ``error`` says why.
    HELD = "held"


VERSION_STATUSES = tuple(VersionStatus)
# The rows of the partial unique index that allows one writer per table (``refresh.versions``).
ONE_WRITER = text(f"status = '{VersionStatus.WRITING}'")
# A new version with fewer rows than this share of the current one's is held, not published.
DEFAULT_HOLD_BELOW_RATIO = 0.1


class RefreshMode(enum.StrEnum):
    """How a data refresh makes a table's new version (``refresh.version_build``)."""

    FULL = "full"  # the whole table, read again
    APPEND = "append"  # the parent's files plus the rows past the watermark
    MERGE = "merge"  # the rows past the watermark applied onto the parent by primary key


REFRESH_MODES = tuple(RefreshMode)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend; SQLite has no time zones, so it stores naive UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("catalog timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    # Named constraints let Alembic's batch mode alter SQLite tables and keep names stable.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        str: Text(),
    }


class Connection(Base):
    __tablename__ = "connections"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source_type: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]]
    # Fernet token of the password; the plain text never reaches the catalog.
    secret: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def name(self) -> str:
        """The API shows the id as ``name`` too: the user chose it."""
        return self.id


class Table(Base):
    __tablename__ = "tables"
    __table_args__ = (UniqueConstraint("connection_id", "schema_name", "table_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    schema_name: Mapped[str]
    table_name: Mapped[str]
    # {"columns": [{"name", "type", "nullable", "native_type"}]}, see refresh.sources.base.Column.
    arrow_schema: Mapped[dict[str, Any]]
    schema_hash: Mapped[str] = mapped_column(String(64))
    # The columns of the table's primary key at the source, in key order, as discovery last found
    # them (the default key of a merge refresh); NULL or empty when it has none.
    primary_key: Mapped[list[str] | None] = mapped_column(JSON)
    current_version: Mapped[str | None] = mapped_column(String(64))
    # URL of the current version directory; NULL means the table has never been cached.
    current_path: Mapped[str | None]
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    last_sync: Mapped[datetime | None]
    discovered_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None]
    schema_changed_at: Mapped[datetime | None]
    # Freshness: the last time the cache was confirmed fresh (a version published, or the source
    # found unchanged), the last change check, and the refreshes failed since the last success.
    last_success_at: Mapped[datetime | None]
    last_checked_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # How each refresh of the table ended, counted for ``GET /metrics`` (Prometheus counters,
    # right with any number of processes because the catalog holds them).
    refreshes_published: Mapped[int] = mapped_column(
        BigInteger, default=0, server_default=text("0")
    )
    refreshes_unchanged: Mapped[int] = mapped_column(
        BigInteger, default=0, server_default=text("0")
    )
    refreshes_held: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    refreshes_failed: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))

    # The refresh history, newest first; loaded only when asked for (selectinload).
    versions: Mapped[list[TableVersion]] = relationship(
        order_by="(TableVersion.started_at.desc(), TableVersion.id.desc())",
        lazy="raise",
        viewonly=True,
    )
    # The table's own settings (None: the defaults); loaded only when asked for.
    settings: Mapped[TableSettings | None] = relationship(lazy="raise", viewonly=True)
    # The row of the current version (its watermark); loaded only when asked for.
    current: Mapped[TableVersion | None] = relationship(
        primaryjoin="and_(Table.id == TableVersion.table_id, "
        "Table.current_version == foreign(TableVersion.version))",
        lazy="raise",
        viewonly=True,
        uselist=False,
    )


class TableVersion(Base):
    """One data refresh attempt: the refresh history, and the lock that keeps refreshes single.

    At most one row per table may be ``writing`` (a partial unique index), so inserting that row is
    how a refresh claims its table across processes and machines; ``heartbeat_at`` tells a live
    claim from one left by a crashed process.
    """

    __tablename__ = "table_versions"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in VERSION_STATUSES) + ")",
            name="status",
        ),
        Index(
            "uq_table_versions_one_writer",
            "table_id",
            unique=True,
            sqlite_where=ONE_WRITER,
            postgresql_where=ONE_WRITER,
        ),
        Index("ix_table_versions_table_id_started_at", "table_id", "started_at"),
        # A deletion marks the version of its path. Hash, not B-tree: a URL may outgrow a B-tree
        # entry (about 2.7 kB) on PostgreSQL.
        Index("ix_table_versions_path", "path", postgresql_using="hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    table_id: Mapped[int] = mapped_column(ForeignKey("tables.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    path: Mapped[str]
    status: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int | None] = mapped_column(BigInteger)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    error: Mapped[str | None]
    job_id: Mapped[str | None] = mapped_column(String(64))
    # When the queued deletion removed the directory (status ``deleted``).
    deleted_at: Mapped[datetime | None]
    # The source's change fingerprint taken before this version was read (``refresh.sources``:
    # ``Source.fingerprints`` or the table's ``check_sql``); a check that finds the current
    # version's fingerprint again skips the refresh. NULL: none was usable (always "changed").
    fingerprint: Mapped[str | None] = mapped_column(String(128))
    # How the version was made (``RefreshMode``; NULL for versions older than incremental
    # refresh, which were full), and the highest cursor value it holds (``refresh.cursors``
    # text; NULL without a cursor), as its manifest says: both committed by its publish.
    mode: Mapped[str | None] = mapped_column(String(8))
    watermark: Mapped[str | None]


class PendingDeletion(Base):
    """A directory to delete once ``delete_after`` has passed (``refresh.versions.deletions``).

    A processor claims due rows for a while (``claim_token``, ``claimed_until``): another one
    skips them meanwhile, and takes them over once the claim has expired (its holder was killed).
    """

    __tablename__ = "pending_deletions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(unique=True)
    delete_after: Mapped[datetime] = mapped_column(index=True)
    retry_count: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None]


class TableSettings(Base):
    """A table's own refresh settings; a table without a row has the defaults.

    One row per table, dropped with it.
    """

    __tablename__ = "table_settings"
    __table_args__ = (
        CheckConstraint("hold_below_ratio >= 0 AND hold_below_ratio <= 1", name="hold_below_ratio"),
        CheckConstraint(
            "max_staleness_seconds IS NULL OR max_staleness_seconds >= 1",
            name="max_staleness_seconds",
        ),
        CheckConstraint(
            "refresh_mode IN (" + ", ".join(f"'{m}'" for m in REFRESH_MODES) + ")",
            name="refresh_mode",
        ),
        CheckConstraint("cursor_overlap >= 0", name="cursor_overlap"),
        CheckConstraint(
            "full_refresh_every_seconds IS NULL OR full_refresh_every_seconds >= 1",
            name="full_refresh_every_seconds",
        ),
    )

    table_id: Mapped[int] = mapped_column(
        ForeignKey("tables.id", ondelete="CASCADE"), primary_key=True
    )
    # One SELECT returning one row, run at the source instead of its fingerprint
    # (``refresh.check_sql``).
    check_sql: Mapped[str | None]
    hold_below_ratio: Mapped[float] = mapped_column(Float, default=DEFAULT_HOLD_BELOW_RATIO)
    max_staleness_seconds: Mapped[int | None]
    # Incremental refresh (``refresh.version_build``): the mode, the cursor column, the primary
    # key (a list of column names; NULL: none set), how far below the watermark to read again,
    # and how often a full refresh comes anyway.
    refresh_mode: Mapped[str] = mapped_column(
        String(8), default=RefreshMode.FULL.value, server_default=RefreshMode.FULL.value
    )
    cursor_column: Mapped[str | None]
    primary_key: Mapped[list[str] | None] = mapped_column(JSON)
    cursor_overlap: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    full_refresh_every_seconds: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Schedule(Base):
    """A connection's refresh schedule, run by the scheduler process (``refresh.schedule_runs``).

    Two schedulers never start one run twice: a run is claimed by moving ``next_run_at`` with a
    compare-and-set. ``last_job_id`` is the job of the last run; ``last_job_settled`` says whether
    its outcome has been counted (``consecutive_failures``, ``last_failure_at``).
    """

    __tablename__ = "schedules"
    __table_args__ = (
        CheckConstraint("(every_seconds IS NULL) <> (cron IS NULL)", name="one_timing"),
        CheckConstraint("every_seconds IS NULL OR every_seconds >= 1", name="every_seconds"),
    )

    connection_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    every_seconds: Mapped[int | None]
    cron: Mapped[str | None] = mapped_column(String(255))
    include_uncached: Mapped[bool] = mapped_column(Boolean)
    only_if_changed: Mapped[bool] = mapped_column(Boolean)
    enabled: Mapped[bool] = mapped_column(Boolean)
    # NULL while disabled or paused: the scheduler looks at due rows only.
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    last_run_at: Mapped[datetime | None]
    last_job_id: Mapped[str | None] = mapped_column(String(64))
    last_job_settled: Mapped[bool] = mapped_column(Boolean, default=True)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    # When the last failed run ended: a successful refresh of the connection after it (a table
    # published or found unchanged) resets ``consecutive_failures``.
    last_failure_at: Mapped[datetime | None]
    paused_reason: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
