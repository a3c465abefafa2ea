"""``POST /refresh``: schema and data refresh, in the request or as a job."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from refresh.api.context import runtime
from refresh.api.parsing import json_body
from refresh.api.schemas import (
    RefreshRequestSchema,
    SchemaRefreshResponseSchema,
    TableRefreshResponseSchema,
)
from refresh.errors import NotImplementedYet
from refresh.refresh_request import Mode, RefreshRequest, resolve_mode, run_refresh

blueprint = Blueprint("refresh", __name__)

RESPONSE_SCHEMAS = {
    Mode.ALL_SCHEMAS: SchemaRefreshResponseSchema,
    Mode.CONNECTION_SCHEMA: SchemaRefreshResponseSchema,
    Mode.TABLE_DATA: TableRefreshResponseSchema,
}


@blueprint.post("/refresh")
def post_refresh() -> Response:
    body = json_body(RefreshRequestSchema())
    request = RefreshRequest(
        connection_id=body.get("connection_id"),
        schema_name=body.get("schema_name"),
        table_name=body.get("table_name"),
        data=body["data"],
        include_uncached=body["include_uncached"],
        run_async=body.get("async_"),
    )
    rt = runtime()
    mode = resolve_mode(rt, request)
    if request.run_async:
        raise NotImplementedYet("async refresh is not available yet; omit async or set it false")
    result = run_refresh(rt, request, mode)
    return jsonify(RESPONSE_SCHEMAS[mode]().dump(result))
