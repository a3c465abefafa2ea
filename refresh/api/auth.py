"""Optional bearer-token authentication (``API_TOKEN``) for everything but ``GET /health``."""

from __future__ import annotations

import hmac

from flask import Flask, request

from refresh.api.context import runtime
from refresh.api.errors import ApiError

OPEN_ENDPOINTS = {"health.health"}


def install(app: Flask) -> None:
    @app.before_request
    def _require_token() -> None:
        token = runtime().settings.api_token
        if token is None or request.endpoint in OPEN_ENDPOINTS:
            return
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <API_TOKEN>'")
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(401, "invalid bearer token")
