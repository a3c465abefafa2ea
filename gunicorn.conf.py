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

# The control socket (for ``gunicornc``) has one default path per user: a second instance on the
# machine takes it over and unlinks it when it stops. Nothing here uses it; dynos have no shell.
control_socket_disable = True


def on_starting(server: object) -> None:
    """Errors gunicorn answers itself (URI too long, bad HTTP) use the API's JSON envelope too."""
    server_errors.install()
