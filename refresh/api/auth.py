"""Optional token authentication (``API_TOKEN``) for everything but ``GET /health``.

API clients send ``Authorization: Bearer <token>``. A browser cannot send a bearer header, so the
rq-dashboard pages (mounted at ``/rq``) also take HTTP Basic with the token as the password (any
user name), and answer 401 with a Basic challenge so the browser asks for it. Since a browser
then sends those credentials on its own, a dashboard action (a POST: requeue, delete, empty)
coming from another site's page is refused.
"""

from __future__ import annotations

import hmac

from flask import Flask, request

from refresh.api.context import runtime
from refresh.api.error_responses import ApiError

OPEN_ENDPOINTS = {"health.health"}
# The blueprint name rq-dashboard registers its pages under (``refresh.api.dashboard`` mounts it).
DASHBOARD_BLUEPRINT = "rq_dashboard"
_DASHBOARD_CHALLENGE = 'Basic realm="refresh service dashboard", charset="UTF-8"'


def install(app: Flask) -> None:
    @app.before_request
    def _require_token() -> None:
        token = runtime().settings.api_token
        if token is None or request.endpoint in OPEN_ENDPOINTS:
            return
        if request.blueprint == DASHBOARD_BLUEPRINT:
            _dashboard_credentials(token)
        else:
            _bearer(token)


def _bearer(token: str) -> None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <API_TOKEN>'")
    if not _matches(given.strip(), token):
        raise ApiError(401, "invalid bearer token")


def _dashboard_credentials(token: str) -> None:
    credentials = request.authorization
    if credentials is not None and credentials.type == "basic":
        if not _matches(credentials.password or "", token):
            raise ApiError(401, "invalid password: use API_TOKEN", challenge=_DASHBOARD_CHALLENGE)
        if request.method not in ("GET", "HEAD") and not _same_origin():
            raise ApiError(
                403, "dashboard actions are only accepted from the dashboard's own pages"
            )
        return
    if credentials is not None and credentials.type == "bearer":
        if not _matches(credentials.token or "", token):
            raise ApiError(401, "invalid bearer token", challenge=_DASHBOARD_CHALLENGE)
        return
    raise ApiError(
        401, "sign in with any user name and API_TOKEN as password", challenge=_DASHBOARD_CHALLENGE
    )


def _same_origin() -> bool:
    """Browsers send ``Origin`` on every cross-site POST; the dashboard's own pages send ours."""
    origin = request.headers.get("Origin")
    return origin is None or origin.rstrip("/") == request.host_url.rstrip("/")


def _matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())
