"""A Redis server of one test's own, which the test can stop and start again on the same port.

The run's shared Redis (127.0.0.1:6379) is never stopped: other test runs use it. This one is a
``redis-server`` on a free port of 127.0.0.1 without persistence (``--save "" --appendonly no``),
so a stop and a start look to its clients as a restart or a failover that lost every write looks:
the connections drop, new ones are refused, and the server comes back empty.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

HOST = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 30


class RedisServer:
    def __init__(self, log_path: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not on PATH (apt-get install redis-server)", pytrace=False)
        self._binary = binary
        self._log_path = log_path
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            self.port: int = probe.getsockname()[1]
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, database: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{database}"

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_connect_timeout=5)

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self) -> None:
        """Start the server (empty) and return once it answers."""
        assert self._process is None, "the server is already running"
        command = [self._binary, "--bind", HOST, "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            try:
                with self.client() as client:
                    client.ping()
                return
            except redis.RedisError:
                pass
            if self._process.poll() is not None:
                self._give_up(f"exited with code {self._process.returncode} while starting")
            if time.monotonic() > deadline:
                self._give_up(f"did not answer within {STARTUP_TIMEOUT_SECONDS} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server: every client's connection drops, new ones are refused."""
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _give_up(self, what: str) -> None:
        self.stop()
        log = self._log_path.read_text(errors="replace")
        pytest.fail(f"redis-server on port {self.port} {what}; its log:\n{log}", pytrace=False)


@contextmanager
def redis_server(log_path: Path) -> Iterator[RedisServer]:
    """A private Redis server, running until the end of the block."""
    server = RedisServer(log_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
