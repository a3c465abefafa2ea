"""``/connections``: register, list, show and delete connections."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for

from refresh import connections
from refresh.api.context import runtime
from refresh.api.parsing import json_body
from refresh.api.schemas import (
    ConnectionCreatedSchema,
    ConnectionCreateSchema,
    ConnectionDetailSchema,
    ConnectionListSchema,
)
from refresh.sources.config import ConfigContext

blueprint = Blueprint("connections", __name__)


@blueprint.post("/connections")
def create_connection() -> tuple[Response, int, dict[str, str]]:
    rt = runtime()
    with ConfigContext({"file_sources_dir": rt.settings.file_sources_dir}):
        body = json_body(ConnectionCreateSchema())
    registration = connections.register_connection(
        rt,
        name=body["name"],
        source_type=body["source_type"],
        config=body["config"],
        skip_discovery=body["skip_discovery"],
    )
    location = url_for(".get_connection", connection_id=registration.connection.id)
    return jsonify(ConnectionCreatedSchema().dump(registration)), 201, {"Location": location}


@blueprint.get("/connections")
def list_connections() -> Response:
    rows = connections.list_connections(runtime())
    return jsonify(ConnectionListSchema().dump({"connections": rows}))


@blueprint.get("/connections/<connection_id>")
def get_connection(connection_id: str) -> Response:
    detail = connections.get_connection(runtime(), connection_id)
    return jsonify(ConnectionDetailSchema().dump(detail))


@blueprint.delete("/connections/<connection_id>")
def delete_connection(connection_id: str) -> tuple[str, int]:
    connections.delete_connection(runtime(), connection_id)
    return "", 204
