"""Reading requests: JSON object bodies validated by a marshmallow schema, and the text of the
URL and the body checked before any endpoint uses it.

Text that no database, driver or file name can take is refused here, in one place, before any
catalog or Redis call: a lone surrogate (``"\\ud800"`` is valid JSON but not valid Unicode: no
encoder takes it) or a NUL character (C strings end there: PostgreSQL's text, libpq's
parameters, file names). In a body or a query string it is a 400 naming the field; in the path
it names nothing (404).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Flask, request
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import ClientDisconnected

from refresh.api.error_responses import ApiError

# Far deeper than any body the API takes (``config.schemas`` is 3 levels), far shallower than the
# interpreter's recursion limit.
MAX_DEPTH = 32
_TOO_DEEP = f"request body nests deeper than {MAX_DEPTH} levels"


def install(app: Flask) -> None:
    """Check the URL of every request before its endpoint runs."""
    app.before_request(_check_url)


def json_body(schema: Schema) -> dict[str, Any]:
    """The validated body, or an ``ApiError`` that names the offending field."""
    return validated(schema, json_object())


def json_object() -> dict[str, Any]:
    """The body as sent: a JSON object, not yet validated."""
    try:
        raw = request.get_data(cache=True)
    except (TimeoutError, ClientDisconnected):
        # The server bounds each read of the body (gunicorn.conf.py); werkzeug reports a read
        # that timed out, like one cut short, as a disconnection.
        raise ApiError(408, "the request body stopped arriving; send it whole") from None
    if not raw.strip():
        raise ApiError(400, "request body is empty; send a JSON object, e.g. {}")
    if not request.is_json:
        raise ApiError(415, "Content-Type must be application/json")
    try:
        body = json.loads(raw)
    except RecursionError:
        # The parser recurses per level: far beyond MAX_DEPTH it fails before we can count.
        raise ApiError(400, _TOO_DEEP) from None
    except ValueError as error:
        raise ApiError(400, f"request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"request body must be a JSON object, got {_json_kind(body)}")
    _check_depth_and_text(body)
    return body


def validated(schema: Schema, body: dict[str, Any]) -> dict[str, Any]:
    try:
        return schema.load(body)
    except ValidationError as error:
        raise ApiError(400, validation_message(error.messages)) from None


def _check_url() -> None:
    """WSGI has decoded ``%00`` in the path and the query string (and the bytes of a surrogate
    leniently, to U+FFFD)."""
    if "\x00" in request.path:
        raise ApiError(
            404, "no such resource: the path holds a NUL character, which no name can hold"
        )
    for name, value in request.args.items(multi=True):
        if flaw := _text_flaw(name) or _text_flaw(value):
            raise ApiError(400, f"query parameter {_printable(name)}: {flaw}")


def _check_depth_and_text(body: dict[str, Any]) -> None:
    """Refuse what the parser accepts but nothing downstream can use, naming the field.

    JSON's ``\\ud800`` and ``\\u0000`` escapes (and UTF-8-encoded surrogates) decode to text no
    driver can take. The walk is iterative: it must not recurse on the very input it guards
    against.
    """
    stack: list[tuple[object, tuple[str, ...]]] = [(body, ())]
    while stack:
        value, path = stack.pop()
        if len(path) >= MAX_DEPTH:
            raise ApiError(400, _TOO_DEEP)
        if isinstance(value, dict):
            for key, item in value.items():
                if flaw := _text_flaw(key):
                    raise ApiError(400, f"{_field((*path, key))}: {flaw}")
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, str(index))) for index, item in enumerate(value))
        elif isinstance(value, str) and (flaw := _text_flaw(value)):
            raise ApiError(400, f"{_field(path)}: {flaw}")


def _text_flaw(text: str) -> str | None:
    """Why no driver or file name can take ``text``, or None."""
    if "\x00" in text:
        return "not valid text (holds a NUL character)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid Unicode text (holds a lone surrogate)"
    return None


def _field(path: tuple[str, ...]) -> str:
    return ".".join(_printable(part) for part in path)


def _printable(name: str) -> str:
    """``name`` as a message can show it: a surrogate as ``\\ud800``, NUL as ``\\x00``."""
    return name.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")


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
