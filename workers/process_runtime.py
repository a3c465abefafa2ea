"""The ``Runtime`` a job uses: built in the process (or bound to the thread) that runs it.

A forking worker must not hand its catalog engine or S3 client to its work horses (connections
shared across a fork get corrupted), so a horse builds its own Runtime from the environment on
first use; the worker process itself never builds one. The in-process broker of embedded mode
binds the web app's Runtime to its worker threads instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from config import load_settings
from refresh.runtime import Runtime

# Set in a work horse whose worker is shutting down (SIGTERM): a batch starts no further table.
shutdown_requested = threading.Event()
_bound = threading.local()
_built: dict[int, Runtime] = {}  # by process id: a forked child never uses its parent's


def current() -> Runtime:
    runtime: Runtime | None = getattr(_bound, "runtime", None)
    if runtime is not None:
        return runtime
    pid = os.getpid()
    if pid not in _built:
        _built.clear()
        _built[pid] = Runtime.from_settings(load_settings())
    return _built[pid]


@contextmanager
def bound(runtime: Runtime) -> Iterator[None]:
    """Jobs run by the calling thread use ``runtime``."""
    _bound.runtime = runtime
    try:
        yield
    finally:
        del _bound.runtime
