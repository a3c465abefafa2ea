"""What the benchmarks share: scratch databases, timing a child process with its peak memory."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[1]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def admin() -> psycopg.Connection:
    return psycopg.connect(**PG, dbname="postgres", autocommit=True)


@contextmanager
def scratch_database(name: str, keep: bool = False) -> Iterator[str]:
    """A PostgreSQL database for one benchmark, dropped afterwards unless ``keep``."""
    with admin() as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not (exists and keep):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        if not keep:
            with admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ensure_orders(database: str, rows: int) -> None:
    """The reference ``orders`` table (bench/orders.sql) with ``rows`` rows in ``database``,
    created unless there (a database kept with ``--keep`` already holds it)."""
    if not psql(database, "-tAc", "SELECT to_regclass('orders')").strip():
        print(f"creating orders with {rows:,} rows in {database} ...", file=sys.stderr)
        psql(database, "-v", f"rows={rows}", "-f", str(ROOT / "bench/orders.sql"))


def psql(database: str, *args: str, stdout: int | None = None) -> str:
    result = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", PG["host"], "-U", PG["user"],
         "-d", database, *args],
        check=True,
        stdout=subprocess.PIPE if stdout is None else stdout,
        text=True,
    )  # fmt: skip
    return result.stdout or ""


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    stdout: str
    cpu_seconds: float = 0.0  # user + sys of the whole process


def run_child(*args: str, env: dict[str, str] | None = None, python: str = sys.executable) -> Run:
    """Run ``python <args>`` and report its wall time and peak RSS (``wait4``)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [python, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed with exit code {process.returncode}")
    return Run(seconds, usage.ru_maxrss / 1024, out, usage.ru_utime + usage.ru_stime)


def timed_command(command: list[str]) -> Run:
    """A shell command's wall time, peak RSS and CPU time, its output discarded."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    seconds = time.perf_counter() - started
    return Run(seconds, usage.ru_maxrss / 1024, "", usage.ru_utime + usage.ru_stime)


def service_client(
    work: Path, catalog_url: str | None = None, cache_url: str | None = None, **settings: str
) -> FlaskClient:
    """The API with the embedded defaults under ``work`` (or the given catalog and cache),
    migrated.

    ``settings`` adds variables to its environment (``SOURCE_READ_STREAMS="2"``); the
    benchmark's own ``S3_ENDPOINT_URL``, when set, reaches it too, for a cache on S3.
    """
    from app import create_app
    from config import load_settings
    from refresh.catalog.migrations import upgrade
    from refresh.runtime import Runtime

    environ = {
        "DATABASE_URL": catalog_url or f"sqlite:///{work}/catalog.db",
        "CACHE_URL": cache_url or f"file://{work}/cache",
        "SECRET_KEY": "bench",
        **{name: os.environ[name] for name in ["S3_ENDPOINT_URL"] if name in os.environ},
        **settings,
    }
    # Migrated before the app starts: in embedded mode its scheduler runs its jobs at once.
    migrating = Runtime.from_settings(load_settings(environ))
    upgrade(migrating.catalog)
    migrating.catalog.dispose()
    return create_app(load_settings(environ)).test_client()


class RedisServer:
    """A ``redis-server`` of the benchmark's own on a free port, without persistence: stopped and
    started again on the same port, it comes back empty, as after a restart or a failover."""

    def __init__(self, work: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._work = work
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and return once it accepts connections."""
        self._process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self._work)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._accepting, 10, "redis-server did not start")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            process.wait()

    def _accepting(self) -> bool:
        with socket.socket() as ping:
            return ping.connect_ex(("127.0.0.1", self.port)) == 0


@contextmanager
def private_redis() -> Iterator[str]:
    """A Redis server of the benchmark's own, running for the block; its URL."""
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as work:
        server = RedisServer(Path(work))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition()`` until it is true; stop the benchmark with ``what`` after ``timeout``
    seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} after {timeout} s")
        time.sleep(0.05)


def procfile_command(process: str) -> list[str]:
    """The command of ``process`` in the Procfile: the benchmark runs what is deployed."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return shlex.split(command)
    raise KeyError(f"no {process!r} process in the Procfile")


@contextmanager
def procfile_processes(
    process: str,
    count: int,
    environ: Mapping[str, str],
    logs: Path,
    command: list[str] | None = None,
) -> Iterator[list[subprocess.Popen]]:
    """``count`` copies of a Procfile process (or of ``command``, a variant of it) with the
    virtualenv's commands first on PATH; stopped with SIGTERM (then SIGKILL) at the end."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    started = []
    try:
        for number in range(count):
            with (logs / f"{process}-{number}.log").open("ab") as log:
                started.append(
                    subprocess.Popen(
                        command or procfile_command(process),
                        cwd=ROOT,
                        env={"PATH": path, **environ},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield started
    finally:
        for child in started:
            child.send_signal(signal.SIGTERM)
        for child in started:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def status_mb(pid: str, field: str) -> float:
    """A memory figure of /proc/<pid>/status in MB; 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def reset_peak_rss() -> None:
    """Start this process's peak RSS (VmHWM) again from its current RSS (Linux 4.0 and later)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
