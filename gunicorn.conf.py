"""Gunicorn settings for the web process (``gunicorn 'app:create_app()'`` picks this file up).

Refreshes that run inside the request can take minutes: threads keep the worker answering its
heartbeat meanwhile, so gunicorn's timeout never kills a request that is still working.
"""

from refresh.api import server_errors

worker_class = "gthread"
threads = 8
timeout = 60
graceful_timeout = 60
accesslog = "-"


def on_starting(server: object) -> None:
    """Errors gunicorn answers itself (URI too long, bad HTTP) use the API's JSON envelope too."""
    server_errors.install()
