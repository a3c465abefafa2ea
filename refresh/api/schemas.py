"""Marshmallow schemas of every request and response; ``/openapi.json`` is generated from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_dump,
    post_load,
    validate,
    validates_schema,
)

from refresh.catalog.models import REFRESH_MODES, VERSION_STATUSES, utcnow
from refresh.connections import DiscoveryStatus
from refresh.jobs import JobStatus
from refresh.refresh_request import Mode
from refresh.sources import SOURCE_TYPES, source_class
from refresh.staleness import is_stale

CONNECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class FullMatch(validate.Regexp):
    """``Regexp`` on the whole value: ``re.match`` lets ``$`` match before a trailing newline.

    The pattern itself stays a plain ``^...$``, valid as an OpenAPI ``pattern`` too.
    """

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class StrictBoolean(fields.Boolean):
    """JSON ``true``/``false`` only: ``"yes"`` or ``1`` for a flag is a client bug worth a 400."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictQueryBoolean(fields.Boolean):
    """A flag of the query string: ``true`` or ``false``, nothing else."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value not in ("true", "false"):
            raise self.make_error("invalid")
        return value == "true"


class StrictFloat(fields.Float):
    """A JSON number only (not a string, not a boolean), and never NaN or an infinity."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class _OmitEmpty(Schema):
    """Response fields listed in ``omit_when_empty`` are left out rather than sent as []/null."""

    omit_when_empty: tuple[str, ...] = ()

    @post_dump
    def _omit(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        for name in self.omit_when_empty:
            if not data.get(name):
                data.pop(name, None)
        return data


# --- connections -------------------------------------------------------------------------------


class ConnectionCreateSchema(Schema):
    name = fields.String(
        required=True,
        validate=FullMatch(
            CONNECTION_NAME,
            error="must be 1-64 letters, digits, '_' or '-', starting with a letter or digit",
        ),
    )
    source_type = fields.String(
        required=True,
        validate=validate.OneOf(SOURCE_TYPES, error="must be one of {choices}"),
    )
    config = fields.Dict(required=True, metadata={"description": "depends on source_type"})
    skip_discovery = StrictBoolean(load_default=False)

    @post_load
    def _load_config(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """``config`` is validated by the schema of the chosen source type."""
        try:
            config = source_class(data["source_type"]).config_schema().load(data["config"])
        except ValidationError as error:
            raise ValidationError({"config": error.messages}) from None
        return {**data, "config": config}


class ConnectionSummarySchema(Schema):
    id = fields.String()
    name = fields.String()
    source_type = fields.String()


class ConnectionListSchema(Schema):
    connections = fields.List(fields.Nested(ConnectionSummarySchema))


class ConnectionCreatedSchema(_OmitEmpty):
    omit_when_empty = ("discovery_error",)

    id = fields.String(attribute="connection.id")
    name = fields.String(attribute="connection.name")
    source_type = fields.String(attribute="connection.source_type")
    tables_discovered = fields.Integer()
    discovery_status = fields.String(metadata={"enum": list(DiscoveryStatus)})
    discovery_error = fields.String()


class ConnectionDetailSchema(Schema):
    id = fields.String(attribute="connection.id")
    name = fields.String(attribute="connection.name")
    source_type = fields.String(attribute="connection.source_type")
    config = fields.Dict(attribute="connection.config", metadata={"description": "no password"})
    table_count = fields.Integer()
    synced_table_count = fields.Integer()


# --- tables --------------------------------------------------------------------------------------


class ColumnSchema(Schema):
    name = fields.String()
    data_type = fields.String(attribute="type", metadata={"description": "Arrow type"})
    nullable = fields.Boolean()
    native_type = fields.String(metadata={"description": "type at the source"})


class TableSchema(Schema):
    schema_name = fields.String()
    table_name = fields.String()
    synced = fields.Function(lambda t: t.current_path is not None, dump_only=True)
    last_sync = fields.DateTime(allow_none=True)
    row_count = fields.Integer(allow_none=True)
    size_bytes = fields.Integer(allow_none=True)
    current_path = fields.String(allow_none=True)
    current_version = fields.String(allow_none=True)
    removed = fields.Function(lambda t: t.removed_at is not None, dump_only=True)
    schema_changed_at = fields.DateTime(allow_none=True)
    primary_key = fields.Function(
        lambda t: t.primary_key or [],
        dump_only=True,
        metadata={"description": "the source's primary key, in key order; [] when it has none"},
    )
    last_success_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "last time confirmed fresh (published or unchanged)"},
    )
    last_checked_at = fields.DateTime(
        allow_none=True, metadata={"description": "last change check at the source"}
    )
    consecutive_failures = fields.Integer(metadata={"description": "refreshes failed since"})
    stale = fields.Function(
        lambda t: is_stale(t, utcnow()),
        dump_only=True,
        allow_none=True,
        metadata={"description": "null unless the table's max_staleness_seconds is set"},
    )
    watermark = fields.Function(
        lambda t: t.current.watermark if t.current is not None else None,
        dump_only=True,
        allow_none=True,
        metadata={"description": "the current version's highest cursor value (append, merge)"},
    )
    columns = fields.List(fields.Nested(ColumnSchema), attribute="arrow_schema.columns")


class TableListSchema(Schema):
    tables = fields.List(fields.Nested(TableSchema))


class VersionSchema(Schema):
    version = fields.String()
    path = fields.String()
    status = fields.String(metadata={"enum": list(VERSION_STATUSES)})
    rows = fields.Integer(allow_none=True)
    bytes = fields.Integer(allow_none=True)
    started_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True)
    job_id = fields.String(allow_none=True)
    deleted_at = fields.DateTime(allow_none=True)
    mode = fields.String(
        allow_none=True,
        metadata={
            "description": "how the version was made (null: before incremental refresh, full)",
            "enum": list(REFRESH_MODES),
        },
    )
    watermark = fields.String(
        allow_none=True,
        metadata={"description": "the highest cursor value the version holds"},
    )


class TableDetailSchema(TableSchema):
    versions = fields.List(fields.Nested(VersionSchema), metadata={"description": "newest first"})


class TableListQuerySchema(Schema):
    stale = StrictQueryBoolean(metadata={"description": "only the tables that are (not) stale"})


class TableSettingsSchema(Schema):
    """``PUT`` takes any of the fields (the others keep their values); answers with all."""

    check_sql = fields.String(
        allow_none=True,
        metadata={"description": "one SELECT returning one row, run instead of the fingerprint"},
    )
    hold_below_ratio = StrictFloat(
        validate=validate.Range(0, 1),
        metadata={"description": "hold a version with fewer rows than this share; default 0.1"},
    )
    max_staleness_seconds = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=1)
    )
    refresh_mode = fields.String(
        validate=validate.OneOf(REFRESH_MODES),
        metadata={"description": "full (default), append or merge", "enum": list(REFRESH_MODES)},
    )
    cursor_column = fields.String(
        allow_none=True,
        metadata={"description": "append and merge: an integer, date or timestamp column"},
    )
    primary_key = fields.List(
        fields.String(),
        allow_none=True,
        validate=validate.Length(min=1),
        metadata={"description": "merge: the columns that identify a row"},
    )
    cursor_overlap = StrictFloat(
        validate=validate.Range(min=0),
        metadata={
            "description": "how far below the watermark to read again, in the cursor's units "
            "(seconds for dates and timestamps); default 0"
        },
    )
    full_refresh_every_seconds = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=1),
        metadata={"description": "a refresh this long after the last full one is full"},
    )


# --- schedules -----------------------------------------------------------------------------------


class ScheduleRequestSchema(Schema):
    every_seconds = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1))
    cron = fields.String(
        allow_none=True,
        metadata={"description": "five fields (minute hour day month weekday), UTC"},
    )
    include_uncached = StrictBoolean(load_default=False)
    only_if_changed = StrictBoolean(load_default=True)
    enabled = StrictBoolean(load_default=True)

    @validates_schema
    def _one_timing(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("every_seconds") is None) == (data.get("cron") is None):
            raise ValidationError(
                "send exactly one of every_seconds (an integer >= 1) or cron (five fields, UTC)"
            )


class ScheduleSchema(Schema):
    connection_id = fields.String()
    every_seconds = fields.Integer(allow_none=True)
    cron = fields.String(allow_none=True)
    include_uncached = fields.Boolean()
    only_if_changed = fields.Boolean()
    enabled = fields.Boolean()
    next_run_at = fields.DateTime(
        allow_none=True, metadata={"description": "null while disabled or paused"}
    )
    last_run_at = fields.DateTime(allow_none=True)
    last_job_id = fields.String(allow_none=True)
    consecutive_failures = fields.Integer()
    paused_reason = fields.String(
        allow_none=True, metadata={"description": "why it stopped; PUT the schedule to resume"}
    )


# --- refresh -------------------------------------------------------------------------------------


class RefreshRequestSchema(Schema):
    connection_id = fields.String()
    schema_name = fields.String()
    table_name = fields.String()
    data = StrictBoolean(load_default=False)
    include_uncached = StrictBoolean(load_default=False)
    if_changed = StrictBoolean(
        load_default=False,
        metadata={"description": "modes 3 and 4: skip tables whose source has not changed"},
    )
    force = StrictBoolean(
        load_default=False,
        metadata={"description": "modes 3 and 4: no change check, and publish even a held version"},
    )
    full = StrictBoolean(
        load_default=False,
        metadata={"description": "modes 3 and 4: a full refresh, whatever the refresh_mode"},
    )
    async_ = StrictBoolean(data_key="async")


class ConnectionErrorSchema(Schema):
    connection_id = fields.String()
    error = fields.String()


class SchemaRefreshResponseSchema(_OmitEmpty):
    omit_when_empty = ("errors",)

    connections_refreshed = fields.Integer()
    connections_failed = fields.Integer()
    tables_discovered = fields.Integer()
    tables_added = fields.Integer()
    tables_modified = fields.Integer()
    errors = fields.List(fields.Nested(ConnectionErrorSchema))


class WarningSchema(_OmitEmpty):
    omit_when_empty = ("schema_name", "table_name")

    schema_name = fields.String()
    table_name = fields.String()
    message = fields.String()


class TableRefreshResponseSchema(_OmitEmpty):
    omit_when_empty = ("warnings", "unchanged", "held", "refresh_mode")

    connection_id = fields.String()
    schema_name = fields.String()
    table_name = fields.String()
    refresh_mode = fields.String(
        metadata={
            "description": "how the version was made (full, append, merge); not sent when this "
            "refresh made none (unchanged)",
            "enum": list(REFRESH_MODES),
        }
    )
    rows_synced = fields.Integer(metadata={"description": "rows read from the source"})
    duration_ms = fields.Integer()
    warnings = fields.List(fields.Nested(WarningSchema))
    unchanged = fields.Boolean(
        metadata={"description": "sent (true) when if_changed found the source unchanged"}
    )
    held = fields.Boolean(
        metadata={"description": "sent (true) when the new version was held, not published"}
    )


class TableErrorSchema(Schema):
    schema_name = fields.String()
    table_name = fields.String()
    error = fields.String()


class ConnectionRefreshResponseSchema(_OmitEmpty):
    omit_when_empty = ("warnings", "tables_unchanged", "tables_held")

    connection_id = fields.String()
    tables_refreshed = fields.Integer(
        metadata={"description": "published, or found unchanged (tables_unchanged of them)"}
    )
    tables_failed = fields.Integer()
    tables_unchanged = fields.Integer(metadata={"description": "sent when not 0"})
    tables_held = fields.Integer(
        metadata={"description": "sent when not 0; neither refreshed nor failed"}
    )
    total_rows = fields.Integer()
    duration_ms = fields.Integer()
    errors = fields.List(fields.Nested(TableErrorSchema), metadata={"description": "always sent"})
    warnings = fields.List(fields.Nested(WarningSchema))


# The answer of each mode: in the request, as a job's result, from the command line (``--json``).
RESPONSE_SCHEMAS: dict[Mode, type[Schema]] = {
    Mode.ALL_SCHEMAS: SchemaRefreshResponseSchema,
    Mode.CONNECTION_SCHEMA: SchemaRefreshResponseSchema,
    Mode.TABLE_DATA: TableRefreshResponseSchema,
    Mode.CONNECTION_DATA: ConnectionRefreshResponseSchema,
}


def refresh_response(mode: Mode, result: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a refresh's result (the plain fields of the mode's result object): the same
    whether it ran in the request, as a job, or from ``flask refresh run``."""
    return RESPONSE_SCHEMAS[mode]().dump(result)


# --- jobs ----------------------------------------------------------------------------------------


class JobAcceptedSchema(Schema):
    job_id = fields.String()
    status = fields.String(metadata={"enum": list(JobStatus)})
    status_url = fields.String(metadata={"description": "GET it for the job's progress and result"})


class ProgressSchema(Schema):
    tables_total = fields.Integer()
    tables_done = fields.Integer()
    tables_failed = fields.Integer()
    rows_synced = fields.Integer()


class JobSchema(_OmitEmpty):
    omit_when_empty = ("result", "error")

    job_id = fields.String()
    status = fields.String(metadata={"enum": list(JobStatus)})
    request = fields.Dict(metadata={"description": "the POST /refresh body as sent"})
    enqueued_at = fields.DateTime(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    ended_at = fields.DateTime(allow_none=True)
    progress = fields.Nested(ProgressSchema)
    result = fields.Dict(
        metadata={
            "description": "when finished: the body the request answers when it runs inline "
            "(SchemaRefreshResponse, TableRefreshResponse or ConnectionRefreshResponse)"
        }
    )
    error = fields.String(metadata={"description": "when failed: why"})


# --- errors and health ---------------------------------------------------------------------------


class ErrorBodySchema(Schema):
    message = fields.String()
    code = fields.String()


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema)


class HealthSchema(Schema):
    status = fields.String(metadata={"enum": ["ok", "unavailable"]})
    checks = fields.Dict(keys=fields.String(), values=fields.String())
