"""Real RQ processes for the integration tests, started exactly as the Procfile starts them.

Each test run works in a Redis database of its own (one of 1-15 on 127.0.0.1:6379, claimed with
a lock key in database 0 and emptied before and after), so runs never see each other's jobs.
Processes start in their own session: a test can stop one with SIGTERM as a dyno manager does,
or kill its whole process group (the worker and its work horse) as a crashed machine would.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sysconfig
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path

import pytest
import redis

from tests.support.paths import ROOT
from tests.support.services import unavailable

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# The worker tests' PARALLEL_REFRESH_COUNT: two tables of a connection at most in flight, so that
# with three workers the cap is what limits.
CAP = 2
_LOCK = "refresh-tests:database:{}"
_LOCK_SECONDS = 6 * 3600
STOP_TIMEOUT_SECONDS = 30
# The virtualenv's commands (rq, gunicorn) first, as an activated shell or a dyno has them.
_PATH = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "/usr/bin:/bin")])


class RedisDatabase:
    """A Redis database claimed for this test run."""

    def __init__(self) -> None:
        admin = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=5)
        try:
            admin.ping()
        except redis.RedisError as error:
            unavailable("Redis", error)
        self._admin = admin
        self._token = secrets.token_hex(8)
        for number in range(1, 16):
            if admin.set(_LOCK.format(number), self._token, nx=True, ex=_LOCK_SECONDS):
                self.number = number
                break
        else:
            pytest.fail("every Redis database 1-15 is claimed by another test run", pytrace=False)
        self.url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.number}"
        self.client().flushdb()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def release(self) -> None:
        self.client().flushdb()
        if self._admin.get(_LOCK.format(self.number)) == self._token.encode():
            self._admin.delete(_LOCK.format(self.number))


def procfile_command(process: str) -> list[str]:
    """The command of ``process`` in the Procfile, so the tests run what is deployed."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return shlex.split(command)
    raise KeyError(f"no {process!r} process in the Procfile")


class Process:
    """A started process whose output goes to ``log_path``."""

    def __init__(self, command: list[str], environ: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                command,
                cwd=ROOT,
                env={"PATH": _PATH, **environ},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def terminate(self) -> None:
        """SIGTERM to the process alone, as Heroku and honcho stop a process."""
        self.popen.send_signal(signal.SIGTERM)

    def kill_everything(self) -> None:
        """SIGKILL to every process it started (the work horses have process groups of their
        own): nothing of it gets to clean up, as when its machine dies."""
        for pid in [self.pid, *_descendants(self.pid)]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait()

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.terminate()
            try:
                self.popen.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill_everything()


@contextmanager
def running(
    processes: int, command: list[str], environ: Mapping[str, str], log_dir: Path
) -> Iterator[list[Process]]:
    """``processes`` copies of ``command``, stopped (SIGTERM, then SIGKILL) at the end."""
    started = [
        Process(command, environ, log_dir / f"{command[0]}-{n}.log") for n in range(processes)
    ]
    try:
        yield started
    finally:
        for process in started:
            process.stop()


# ``workers(n, *extra_flags)``: n worker processes with the Procfile's command (tests/workers).
StartWorkers = Callable[..., AbstractContextManager[list[Process]]]


def wait_until(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``condition()`` every ``interval`` seconds until it is true, failing with ``what``
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} after {timeout} s"
        time.sleep(interval)


def _descendants(pid: int) -> list[int]:
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # the parent pid
            children += [int(entry.name), *_descendants(int(entry.name))]
    return children
