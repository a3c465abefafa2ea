"""The errors gunicorn answers itself, before Flask sees the request, in the API's envelope.

gunicorn refuses a request line over its ``limit_request_line`` (414), headers over its limits
(431) and malformed HTTP (400) with an HTML page of its own, and has no setting to change that
page. Raising its limits only moves the edge (a limit Flask checked would sit behind gunicorn's;
no limit at all lets a client fill the memory with one request line), so its error writer is
replaced instead: ``gunicorn.conf.py`` calls ``install`` in the master, before any worker forks.
"""

from __future__ import annotations

import json
import socket

from gunicorn import util

from refresh.api.error_responses import envelope


def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """What ``gunicorn.util.write_error`` sends, as JSON: the same status line and headers."""
    body = json.dumps(envelope(status_int, mesg or reason)).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    util.write_error = write_error
