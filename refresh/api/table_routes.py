"""``/connections/{id}/tables``: the catalog's view of a connection's tables and their caches."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from refresh import tables
from refresh.api.context import runtime
from refresh.api.schemas import TableDetailSchema, TableListSchema

blueprint = Blueprint("tables", __name__)

TABLE = "/connections/<connection_id>/tables/<schema_name>/<table_name>"


@blueprint.get("/connections/<connection_id>/tables")
def list_tables(connection_id: str) -> Response:
    rows = tables.list_tables(runtime(), connection_id)
    return jsonify(TableListSchema().dump({"tables": rows}))


@blueprint.get(TABLE)
def get_table(connection_id: str, schema_name: str, table_name: str) -> Response:
    table = tables.get_table(runtime(), connection_id, schema_name, table_name)
    return jsonify(TableDetailSchema().dump(table))


@blueprint.delete(TABLE + "/cache")
def drop_table_cache(connection_id: str, schema_name: str, table_name: str) -> tuple[str, int]:
    tables.drop_table_cache(runtime(), connection_id, schema_name, table_name)
    return "", 204


@blueprint.delete("/connections/<connection_id>/cache")
def drop_connection_cache(connection_id: str) -> tuple[str, int]:
    tables.drop_connection_cache(runtime(), connection_id)
    return "", 204
