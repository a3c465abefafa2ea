"""``/connections/{id}/tables``: the catalog's view of a connection's tables, their caches and
their settings."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, Response, jsonify, request

from refresh import table_settings, tables
from refresh.api.context import runtime
from refresh.api.parsing import json_body, validated
from refresh.api.schemas import (
    TableDetailSchema,
    TableListQuerySchema,
    TableListSchema,
    TableSettingsSchema,
)

blueprint = Blueprint("tables", __name__)

TABLE = "/connections/<connection_id>/tables/<schema_name>/<table_name>"


@blueprint.get("/connections/<connection_id>/tables")
def list_tables(connection_id: str) -> Response:
    query = validated(TableListQuerySchema(), dict(request.args))
    rows = tables.list_tables(runtime(), connection_id, stale=query.get("stale"))
    return jsonify(TableListSchema().dump({"tables": rows}))


@blueprint.get(TABLE)
def get_table(connection_id: str, schema_name: str, table_name: str) -> Response:
    table = tables.get_table(runtime(), connection_id, schema_name, table_name)
    return jsonify(TableDetailSchema().dump(table))


@blueprint.get(TABLE + "/settings")
def get_table_settings(connection_id: str, schema_name: str, table_name: str) -> Response:
    settings = table_settings.get_settings(runtime(), connection_id, schema_name, table_name)
    return jsonify(TableSettingsSchema().dump(asdict(settings)))


@blueprint.put(TABLE + "/settings")
def put_table_settings(connection_id: str, schema_name: str, table_name: str) -> Response:
    changes = json_body(TableSettingsSchema())
    settings = table_settings.put_settings(
        runtime(), connection_id, schema_name, table_name, changes
    )
    return jsonify(TableSettingsSchema().dump(asdict(settings)))


@blueprint.delete(TABLE + "/cache")
def drop_table_cache(connection_id: str, schema_name: str, table_name: str) -> tuple[str, int]:
    tables.drop_table_cache(runtime(), connection_id, schema_name, table_name)
    return "", 204


@blueprint.delete("/connections/<connection_id>/cache")
def drop_connection_cache(connection_id: str) -> tuple[str, int]:
    tables.drop_connection_cache(runtime(), connection_id)
    return "", 204
