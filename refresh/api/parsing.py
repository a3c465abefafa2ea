"""Reading request bodies: JSON objects only, validated by a marshmallow schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError

from refresh.api.errors import ApiError


def json_body(schema: Schema) -> dict[str, Any]:
    """The validated body, or an ``ApiError`` that names the offending field."""
    return validated(schema, json_object())


def json_object() -> dict[str, Any]:
    """The body as sent: a JSON object, not yet validated."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(400, "request body is empty; send a JSON object, e.g. {}")
    if not request.is_json:
        raise ApiError(415, "Content-Type must be application/json")
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise ApiError(400, f"request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"request body must be a JSON object, got {_json_kind(body)}")
    return body


def validated(schema: Schema, body: dict[str, Any]) -> dict[str, Any]:
    try:
        return schema.load(body)
    except ValidationError as error:
        raise ApiError(400, validation_message(error.messages)) from None


def validation_message(messages: Any, prefix: str = "") -> str:
    """``{"config": {"host": ["Missing data..."]}}`` becomes ``config.host: Missing data...``."""
    if isinstance(messages, Mapping):
        parts = [
            validation_message(value, f"{prefix}{key}." if key != "_schema" else prefix)
            for key, value in sorted(messages.items(), key=lambda kv: str(kv[0]))
        ]
        return "; ".join(parts)
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        field = prefix.rstrip(".")
        text = " ".join(messages)
        return f"{field}: {text}" if field else text
    if isinstance(messages, list):
        return "; ".join(validation_message(m, prefix) for m in messages)
    return f"{prefix.rstrip('.')}: {messages}"


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")
