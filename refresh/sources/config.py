"""The ``config`` schemas of ``POST /connections``, shared by the source types that look alike.

Fields are strict (marshmallow 4: a string field refuses numbers, a strict integer refuses bools
and strings) and unknown fields are refused (marshmallow's default ``unknown = RAISE``), so a typo
in a config is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import os
from typing import Any

from marshmallow import Schema, fields, post_load, validate

_NON_EMPTY = validate.Length(min=1)


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
    """A database file (SQLite, DuckDB) on the machine that runs the service."""

    path = fields.String(required=True, validate=_NON_EMPTY)

    @post_load
    def absolute_path(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        # Web and worker processes may run from different directories: store what they share.
        return {**data, "path": os.path.abspath(data["path"])}
