"""Gunicorn settings for the web process (``gunicorn 'app:create_app()'`` picks this file up).

Refreshes that run inside the request can take minutes: threads keep the worker answering its
heartbeat meanwhile, so gunicorn's timeout never kills a request that is still working. No
request may hold a thread for nothing, though: requests waiting for another refresh of their
table are limited to half of the threads (``refresh.versions.claims.MAX_WAITERS``), and a client
that stops sending its request body is dropped after ``BODY_READ_TIMEOUT_SECONDS``.
"""

from typing import Any

from refresh.api import server_errors
from refresh.versions.claims import MAX_WAITERS

BODY_READ_TIMEOUT_SECONDS = 5

worker_class = "gthread"
threads = 2 * MAX_WAITERS
timeout = 60
graceful_timeout = 60
accesslog = "-"

# The control socket (for ``gunicornc``) has one default path per user: a second instance on the
# machine takes it over and unlinks it when it stops. Nothing here uses it; dynos have no shell.
control_socket_disable = True


def pre_request(worker: Any, req: Any) -> None:
    """Bound every read of the request body (gunicorn waits forever by default); the API then
    answers 408 to a client that stopped sending."""
    worker.log.debug("%s %s", req.method, req.path)
    sock = getattr(getattr(req, "unreader", None), "sock", None)
    if sock is not None:
        sock.settimeout(BODY_READ_TIMEOUT_SECONDS)


def on_starting(server: object) -> None:
    """Errors gunicorn answers itself (URI too long, bad HTTP) use the API's JSON envelope too."""
    server_errors.install()
