"""The web process as it is deployed: gunicorn with the repository's gunicorn.conf.py.

For what only a real server shows: the answers gunicorn gives itself, before Flask sees a request
(an over-long request line, malformed HTTP), and what the master process leaves on the machine.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.support.paths import ROOT

HOST = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str | None
    body: bytes


def exchange(port: int, request: bytes) -> Answer:
    """Send ``request`` as it is (it need not be valid HTTP) and read the one answer."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Answer(response.status, response.getheader("Content-Type"), response.read())


def get(port: int, path: str) -> Answer:
    return exchange(port, f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())


def post(port: int, path: str, body: dict[str, Any]) -> Answer:
    """A JSON request to the server on ``port``."""
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return exchange(port, head.encode() + data)


@contextmanager
def run_gunicorn(environ: Mapping[str, str], log_path: Path) -> Iterator[int]:
    """gunicorn serving ``app:create_app()`` on a free port of 127.0.0.1; yields the port.

    ``environ`` is the whole environment of the server (plus PATH), so nothing of the test
    run's own environment configures it by accident.
    """
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{port}", "app:create_app()"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **environ},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_serving(process, port, log_path)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while True:
        try:
            request = b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
            if exchange(port, request).status == 200:
                return
        except OSError:
            pass
        if process.poll() is not None:
            _give_up(f"exited with code {process.returncode} while starting", log_path)
        if time.monotonic() > deadline:
            _give_up(f"did not answer within {STARTUP_TIMEOUT_SECONDS} s", log_path)
        time.sleep(0.1)


def _give_up(what: str, log_path: Path) -> NoReturn:
    pytest.fail(f"gunicorn {what}; its log:\n{log_path.read_text(errors='replace')}", pytrace=False)
