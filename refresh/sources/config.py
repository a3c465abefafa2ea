"""The ``config`` schemas of ``POST /connections``, shared by the source types that look alike.

Fields are strict (marshmallow 4: a string field refuses numbers, a strict integer refuses bools
and strings) and unknown fields are refused (marshmallow's default ``unknown = RAISE``), so a typo
in a config is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypedDict

from marshmallow import Schema, ValidationError, fields, post_load, validate
from marshmallow.experimental.context import Context

_NON_EMPTY = validate.Length(min=1)


class ConfigSettings(TypedDict):
    """The service settings that config validation depends on."""

    file_sources_dir: Path


# Set by the caller around ``load``, from the runtime's settings. A schema that needs it and finds
# none set fails (LookupError) rather than validate without the confinement.
ConfigContext = Context[ConfigSettings]


def confined_path(path: str, field_name: str) -> str:
    """``path`` resolved (``..``, symlinks) inside ``FILE_SOURCES_DIR``, or a ValidationError.

    A relative path is relative to that directory. The file is not opened, and the message is
    the same whether a path outside exists or not.
    """
    root = ConfigContext.get()["file_sources_dir"]
    if "\x00" in path:
        raise ValidationError("must not contain a NUL character", field_name=field_name)
    resolved = Path(os.path.realpath(root / path))
    if not resolved.is_relative_to(root):
        raise ValidationError(
            f"must be inside FILE_SOURCES_DIR ({root}); put the file there or change "
            "FILE_SOURCES_DIR",
            field_name=field_name,
        )
    return str(resolved)


def _port(default: int) -> fields.Integer:
    return fields.Integer(strict=True, load_default=default, validate=validate.Range(1, 65535))


class ServerConfigSchema(Schema):
    """A database server reached over the network (PostgreSQL, MySQL/MariaDB)."""

    host = fields.String(required=True, validate=_NON_EMPTY)
    user = fields.String(required=True, validate=_NON_EMPTY)
    database = fields.String(required=True, validate=_NON_EMPTY)
    password = fields.String(allow_none=True)
    # Restricts discovery to these schemas (MySQL: databases); system schemas are always skipped.
    schemas = fields.List(fields.String(validate=_NON_EMPTY), validate=_NON_EMPTY)


class PostgresConfigSchema(ServerConfigSchema):
    port = _port(5432)


class MySQLConfigSchema(ServerConfigSchema):
    port = _port(3306)


class FileConfigSchema(Schema):
    """A database file (SQLite, DuckDB) under ``FILE_SOURCES_DIR`` on the service's machine."""

    path = fields.String(required=True, validate=_NON_EMPTY)

    @post_load
    def confined_absolute_path(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        # Web and worker processes may run from different directories: store what they share.
        return {**data, "path": confined_path(data["path"], "path")}
