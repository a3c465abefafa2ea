"""``GET /openapi.json``, generated from the marshmallow schemas the endpoints really use."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, jsonify
from marshmallow import Schema

from refresh.api import schemas

blueprint = Blueprint("openapi", __name__)


@dataclass(frozen=True)
class Operation:
    summary: str
    responses: dict[int, type[Schema] | dict[str, Any] | None]
    request: type[Schema] | None = None
    query: type[Schema] | None = None
    errors: tuple[int, ...] = field(default=())
    authenticated: bool = True


OPERATIONS: dict[str, Operation] = {
    "connections.create_connection": Operation(
        "Register a connection and discover its tables",
        {201: schemas.ConnectionCreatedSchema},
        request=schemas.ConnectionCreateSchema,
        errors=(400, 409, 413, 415),
    ),
    "connections.list_connections": Operation(
        "List connections", {200: schemas.ConnectionListSchema}
    ),
    "connections.get_connection": Operation(
        "Show a connection (without its password)",
        {200: schemas.ConnectionDetailSchema},
        errors=(404,),
    ),
    "connections.delete_connection": Operation(
        "Delete a connection; its Parquet is deleted after the grace period",
        {204: None},
        errors=(404,),
    ),
    "tables.list_tables": Operation(
        "List a connection's tables",
        {200: schemas.TableListSchema},
        query=schemas.TableListQuerySchema,
        errors=(400, 404),
    ),
    "tables.get_table": Operation(
        "Show a table with its refresh history", {200: schemas.TableDetailSchema}, errors=(404,)
    ),
    "tables.get_table_settings": Operation(
        "A table's settings (the defaults when never set)",
        {200: schemas.TableSettingsSchema},
        errors=(404,),
    ),
    "tables.put_table_settings": Operation(
        "Change any of a table's settings; answers with all of them",
        {200: schemas.TableSettingsSchema},
        request=schemas.TableSettingsSchema,
        errors=(400, 404, 413, 415),
    ),
    "schedules.put_schedule": Operation(
        "Create or replace the connection's refresh schedule (resumes a paused one)",
        {200: schemas.ScheduleSchema},
        request=schemas.ScheduleRequestSchema,
        errors=(400, 404, 413, 415),
    ),
    "schedules.get_schedule": Operation(
        "The connection's refresh schedule and how its runs went",
        {200: schemas.ScheduleSchema},
        errors=(404,),
    ),
    "schedules.delete_schedule": Operation(
        "Stop scheduling the connection's refreshes", {204: None}, errors=(404,)
    ),
    "metrics.get_metrics": Operation(
        "Prometheus metrics (text format), read from the catalog and the job queue",
        {200: None},
        errors=(503,),
    ),
    "tables.drop_table_cache": Operation(
        "Uncache a table; its Parquet is deleted after the grace period",
        {204: None},
        errors=(404,),
    ),
    "tables.drop_connection_cache": Operation(
        "Uncache every table of a connection", {204: None}, errors=(404,)
    ),
    "refresh.post_refresh": Operation(
        "Refresh schema (all connections or one) or data (one table, or a connection's tables "
        "as a job)",
        {
            200: {
                "oneOf": [
                    schemas.SchemaRefreshResponseSchema,
                    schemas.TableRefreshResponseSchema,
                    schemas.ConnectionRefreshResponseSchema,
                ]
            },
            202: schemas.JobAcceptedSchema,
        },
        request=schemas.RefreshRequestSchema,
        errors=(400, 404, 409, 413, 415, 500, 502, 503),
    ),
    "refresh.get_job": Operation(
        "A refresh job: status, live progress, then its result or error",
        {200: schemas.JobSchema},
        errors=(404, 503),
    ),
    "health.health": Operation(
        "Reachability of the catalog, the storage and the job queue (Redis)",
        {200: schemas.HealthSchema, 503: schemas.HealthSchema},
        authenticated=False,
    ),
    "openapi.openapi": Operation("This document", {200: None}),
}


@blueprint.get("/openapi.json")
def openapi() -> Response:
    spec = current_app.extensions.get("openapi")
    if spec is None:
        spec = current_app.extensions["openapi"] = build_spec(current_app)
    return jsonify(spec)


def build_spec(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title="Refresh service",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Versioned Parquet copies of SQL tables, refreshed on demand."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        operation = OPERATIONS.get(rule.endpoint)
        if operation is None:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            spec.path(path=path, operations={method.lower(): _operation(operation, rule.arguments)})
    return spec.to_dict()


def _operation(operation: Operation, arguments: set[str]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, schema in operation.responses.items():
        responses[str(status)] = {"description": _DESCRIPTIONS.get(status, "success")}
        if schema is not None:
            responses[str(status)]["content"] = {"application/json": {"schema": schema}}
    for status in operation.errors:
        responses[str(status)] = {
            "description": _DESCRIPTIONS[status],
            "content": {"application/json": {"schema": schemas.ErrorSchema}},
        }
    result: dict[str, Any] = {"summary": operation.summary, "responses": responses}
    if operation.authenticated:
        result["security"] = [{"bearer": []}]
        responses["401"] = {
            "description": _DESCRIPTIONS[401],
            "content": {"application/json": {"schema": schemas.ErrorSchema}},
        }
    parameters: list[Any] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in sorted(arguments)
    ]
    if operation.query is not None:
        parameters.append({"in": "query", "schema": operation.query})
    if parameters:
        result["parameters"] = parameters
    if operation.request is not None:
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": operation.request}},
        }
    return result


_DESCRIPTIONS = {
    200: "success",
    201: "created",
    202: "accepted: running as a job, see Location / status_url",
    204: "done, no content",
    400: "invalid request; the message names the field",
    401: "missing or wrong bearer token (only when API_TOKEN is set)",
    404: "connection or table not found",
    409: "conflict with the catalog's state, or the table is being refreshed by someone else",
    413: "request body over 1 MiB",
    415: "Content-Type is not application/json",
    500: "the service failed; the message says why (storage, stored secrets, a failed job)",
    502: "the source is unreachable or refused the login or query",
    503: "a component is unreachable (the job queue's Redis)",
}
