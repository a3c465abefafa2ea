"""``GET /health``: is every component the service depends on reachable?

``redis`` is the job queue: Redis, or the in-process broker in embedded mode (always there).
The checks run at once, each for ``PROBE_SECONDS`` at most: a component that hangs (a frozen S3
endpoint, a catalog that stopped answering) is reported unavailable without holding the answer.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable

from flask import Blueprint, Response, jsonify

from refresh.api.context import job_queue, runtime
from refresh.api.schemas import HealthSchema

blueprint = Blueprint("health", __name__)
log = logging.getLogger(__name__)

PROBE_SECONDS = 3.0
# Shared by all requests: a probe stuck in a driver keeps its thread until the driver's own
# timeout; the next checks then wait in line and are reported unavailable at their deadline.
_probes = concurrent.futures.ThreadPoolExecutor(max_workers=6, thread_name_prefix="health")


@blueprint.get("/health")
def health() -> tuple[Response, int]:
    rt = runtime()
    probes: dict[str, Callable[[], None]] = {
        "catalog": rt.catalog.ping,
        "storage": rt.storage.check,
        "redis": job_queue().check,
    }
    running = {name: _probes.submit(_probe, name, probe) for name, probe in probes.items()}
    concurrent.futures.wait(running.values(), timeout=PROBE_SECONDS)
    checks = {name: _outcome(name, future) for name, future in running.items()}
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


def _outcome(name: str, future: concurrent.futures.Future[str]) -> str:
    if future.done():
        return future.result()
    log.warning("health check %s did not answer within %.0f s", name, PROBE_SECONDS)
    return "unavailable"
