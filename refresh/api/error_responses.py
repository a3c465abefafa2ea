"""One error envelope for every failure the API can answer with.

``{"error": {"message": "...", "code": "..."}}``: routing errors, body parsing, domain errors and
crashes all end here, so clients need exactly one error path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from refresh.common.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    RefreshError,
    ServiceUnavailable,
)
from refresh.sources import SourceError
from refresh.storage import StorageError

log = logging.getLogger(__name__)

CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    417: "EXPECTATION_FAILED",
    431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
    500: "INTERNAL_SERVER_ERROR",
    502: "SOURCE_UNAVAILABLE",
    503: "SERVICE_UNAVAILABLE",
}

_DOMAIN_STATUS: dict[type[Exception], int] = {
    InvalidRequest: 400,
    NotFound: 404,
    Conflict: 409,
    SourceError: 502,
    ServiceUnavailable: 503,
    # Anything else of ours (Misconfigured, Interrupted, a failed job) is the service's own state,
    # not the request's fault: a 500, but said as it is, since the message names the fix.
    RefreshError: 500,
}


class ApiError(Exception):
    """An error the HTTP layer itself detects (body parsing, authentication)."""

    def __init__(self, status: int, message: str, challenge: str = "Bearer") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        # The WWW-Authenticate challenge of a 401: how to authenticate.
        self.challenge = challenge


def envelope(status: int, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"message": message, "code": CODES.get(status, "ERROR")}}


def error_response(status: int, message: str) -> Response:
    response = jsonify(envelope(status, message))
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        response = error_response(error.status, error.message)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = error.challenge
        return response

    for exc_type, status in _DOMAIN_STATUS.items():
        app.register_error_handler(exc_type, _domain_handler(status))

    @app.errorhandler(StorageError)
    def _storage_error(error: StorageError) -> Response:
        log.error("cache storage failed: %s", error)
        return error_response(500, f"cache storage failed: {error}")

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        response = error_response(status, _http_message(error))
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def _crash(error: Exception) -> Response:
        # The traceback goes to the log only: it can hold values from the request or the source.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal server error; the service log has the details")


def _domain_handler(status: int) -> Callable[[Exception], Response]:
    def handler(error: Exception) -> Response:
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, error)
        return error_response(status, str(error))

    return handler


def _http_message(error: HTTPException) -> str:
    if error.code == 404:
        return f"no such endpoint: {request.method} {request.path}"
    if error.code == 405:
        allowed = ", ".join(sorted(error.valid_methods or ()))  # type: ignore[attr-defined]
        return f"method {request.method} is not allowed on {request.path}; allowed: {allowed}"
    if error.code == 413:
        return "request body is larger than the 1 MiB limit"
    return error.description or error.name
