"""What a ``POST /refresh`` body asks for: validation in docs/api.md's order, its mode, and
whether it runs in the request or as a job."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from refresh.common.errors import InvalidRequest
from refresh.data_refresh import ChangeRules, TableRefreshResult, refresh_table
from refresh.lookup import load_connection
from refresh.runtime import Runtime
from refresh.schema_refresh import (
    SchemaRefreshResult,
    refresh_all_schemas,
    refresh_connection_schema,
)

RefreshResult = SchemaRefreshResult | TableRefreshResult


class Mode(enum.Enum):
    ALL_SCHEMAS = "schema refresh of every connection"
    CONNECTION_SCHEMA = "schema refresh of one connection"
    TABLE_DATA = "data refresh of one table"
    CONNECTION_DATA = "data refresh of a connection's tables"


class Execution(enum.Enum):
    INLINE = "in the request"
    JOB = "as a job; the request answers at once"
    AWAITED_JOB = "as a job the request waits for"


@dataclass(frozen=True)
class RefreshRequest:
    connection_id: str | None = None
    schema_name: str | None = None
    table_name: str | None = None
    data: bool = False
    include_uncached: bool = False
    # Modes 3 and 4: skip a table whose source has not changed since its current version.
    if_changed: bool = False
    # Modes 3 and 4: no change check, and publish even a version the hold would keep back.
    force: bool = False
    # Modes 3 and 4: a full refresh, whatever the tables' refresh modes.
    full: bool = False
    # None: the mode's default (modes 1-3 answer in the request, mode 4 runs as a job).
    run_async: bool | None = None

    @property
    def rules(self) -> ChangeRules:
        return ChangeRules(if_changed=self.if_changed, force=self.force, full=self.full)


def resolve_mode(rt: Runtime, request: RefreshRequest) -> Mode:
    """Apply the validation table of docs/api.md, in its order, and name the mode.

    The order matters to clients: an unknown connection is reported before any complaint about
    how the rest of the body combines.
    """
    if request.schema_name is not None and request.connection_id is None:
        raise InvalidRequest("schema_name requires connection_id")
    if request.table_name is not None and request.schema_name is None:
        raise InvalidRequest("table_name requires schema_name")
    if request.data and request.connection_id is None:
        raise InvalidRequest("data refresh requires connection_id")
    if request.connection_id is not None:
        with rt.catalog.session() as session:
            load_connection(session, request.connection_id)
    if request.schema_name is not None and request.table_name is None:
        if not request.data:
            raise InvalidRequest(
                "schema-level refresh not supported; omit schema_name to refresh entire connection"
            )
        raise InvalidRequest("data refresh with schema_name requires table_name")
    if request.table_name is not None and not request.data:
        raise InvalidRequest(
            "schema refresh cannot target specific tables; use data: true for table data refresh"
        )
    mode = _mode(request)
    if request.include_uncached and mode is not Mode.CONNECTION_DATA:
        raise InvalidRequest(
            "include_uncached applies only to a connection-wide data refresh "
            "(connection_id and data: true, without schema_name)"
        )
    for flag in ("if_changed", "force", "full"):
        if getattr(request, flag) and mode not in (Mode.TABLE_DATA, Mode.CONNECTION_DATA):
            raise InvalidRequest(f"{flag} applies only to a data refresh (data: true)")
    if request.if_changed and request.force:
        raise InvalidRequest(
            "force skips the change check that if_changed asks for; send one of them"
        )
    return mode


def execution(mode: Mode, run_async: bool | None) -> Execution:
    """The one rule for where a request runs: its mode's default unless ``async`` says otherwise.

    Mode 4 needs its batch jobs whatever ``async`` says (they keep the per-connection cap), so
    ``async: false`` makes the request wait for them.
    """
    if RUNNERS[mode] is None:
        return Execution.AWAITED_JOB if run_async is False else Execution.JOB
    return Execution.JOB if run_async else Execution.INLINE


def _mode(request: RefreshRequest) -> Mode:
    if request.connection_id is None:
        return Mode.ALL_SCHEMAS
    if not request.data:
        return Mode.CONNECTION_SCHEMA
    if request.table_name is not None:
        return Mode.TABLE_DATA
    return Mode.CONNECTION_DATA


def run_refresh(
    rt: Runtime, request: RefreshRequest, mode: Mode, job_id: str | None = None
) -> RefreshResult:
    """Carry out a validated request of a mode that runs in one call (the request's thread or its
    job). Mode 4 never runs here: it is a job of batch jobs (``workers.tasks``)."""
    run = RUNNERS[mode]
    if run is None:
        raise AssertionError(f"{mode.value} runs as batch jobs, not in one call")
    return run(rt, request, job_id)


Runner = Callable[[Runtime, RefreshRequest, "str | None"], RefreshResult]


def _table_data(rt: Runtime, request: RefreshRequest, job_id: str | None) -> RefreshResult:
    assert request.connection_id is not None
    assert request.schema_name is not None
    assert request.table_name is not None
    return refresh_table(
        rt,
        request.connection_id,
        request.schema_name,
        request.table_name,
        job_id=job_id,
        rules=request.rules,
    )


# How each mode runs in one call (in the request, or as its one job); None: only as jobs. Every
# layer looks the mode up in one table of its own, keyed by ``Mode``: this one, the job queue's
# (which job function: ``workers.runner``) and the API's (which response schema:
# ``refresh.api.schemas``).
RUNNERS: dict[Mode, Runner | None] = {
    Mode.ALL_SCHEMAS: lambda rt, request, job_id: refresh_all_schemas(rt),
    Mode.CONNECTION_SCHEMA: lambda rt, request, job_id: refresh_connection_schema(
        rt, request.connection_id or ""
    ),
    Mode.TABLE_DATA: _table_data,
    Mode.CONNECTION_DATA: None,
}
