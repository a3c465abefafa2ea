"""``GET /health``: is every component the service depends on reachable?

``redis`` is the job queue: Redis, or the in-process broker in embedded mode (always there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Response, jsonify

from refresh.api.context import job_queue, runtime
from refresh.api.schemas import HealthSchema

blueprint = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@blueprint.get("/health")
def health() -> tuple[Response, int]:
    rt = runtime()
    probes: dict[str, Callable[[], None]] = {
        "catalog": rt.catalog.ping,
        "storage": rt.storage.check,
        "redis": job_queue().check,
    }
    checks = {name: _probe(name, probe) for name, probe in probes.items()}
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return jsonify(HealthSchema().dump(body)), 200 if healthy else 503


def _probe(name: str, probe: Callable[[], None]) -> str:
    try:
        probe()
    except Exception as error:
        # The reason goes to the log; the unauthenticated endpoint only says which part is down.
        log.warning("health check %s failed: %s", name, error)
        return "unavailable"
    return "ok"
