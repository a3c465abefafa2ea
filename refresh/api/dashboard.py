"""rq-dashboard, mounted at ``/rq`` in the web app, on the job queue's own Redis connection.

rq-dashboard opens connections from URLs it reads per request; this app already has its
connection (with bounded timeouts, or the in-process broker's in embedded mode), so a
``before_request`` of the blueprint, run after rq-dashboard's own, hands it that connection.
Authentication is the app's (``refresh.api.auth``).
"""

from __future__ import annotations

import rq_dashboard
from flask import Flask, current_app
from redis import Redis

from refresh.api.auth import DASHBOARD_BLUEPRINT

PREFIX = "/rq"


def mount_dashboard(app: Flask, connection: Redis, label: str) -> None:
    """``label`` names the Redis instance on the dashboard (a URL; rq-dashboard masks its
    password)."""
    assert rq_dashboard.blueprint.name == DASHBOARD_BLUEPRINT, "auth would not cover /rq"
    app.config["RQ_DASHBOARD_REDIS_URL"] = [label]
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
    app.redis_conn = connection  # type: ignore[attr-defined]

    def use_the_app_connection() -> None:
        current_app.redis_conn = connection  # type: ignore[attr-defined]

    app.before_request_funcs.setdefault(DASHBOARD_BLUEPRINT, []).append(use_the_app_connection)
