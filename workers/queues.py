"""The queues, and the Redis connection every process opens to reach them.

Every Redis call is bounded (connect and socket timeouts), so a Redis that stops answering fails
a request with 503 instead of hanging it; RQ's worker widens the socket timeout of its own
connection for its blocking dequeue.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis import Redis

REFRESH = "refresh"
MAINTENANCE = "maintenance"
QUEUES = (REFRESH, MAINTENANCE)

CONNECT_TIMEOUT_SECONDS = 5
SOCKET_TIMEOUT_SECONDS = 10


def client_url(url: str) -> str:
    """``url`` with the client options every process uses, as redis-py reads them from a URL.

    The URL form lets ``rq worker`` (which takes a URL) and the scheduler share them. A ``rediss://``
    URL skips certificate verification: Heroku Redis presents a self-signed certificate.
    """
    parts = urlsplit(url)
    options = {
        "socket_connect_timeout": str(CONNECT_TIMEOUT_SECONDS),
        "socket_timeout": str(SOCKET_TIMEOUT_SECONDS),
        "health_check_interval": "30",
    }
    if parts.scheme == "rediss":
        options |= {"ssl_cert_reqs": "none", "ssl_check_hostname": "false"}
    query = dict(parse_qsl(parts.query)) | options
    return urlunsplit(parts._replace(query=urlencode(query)))


def connect(url: str) -> Redis:
    return Redis.from_url(client_url(url))
