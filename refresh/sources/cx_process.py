"""Reading a query with connectorx in a child process that streams Arrow IPC back.

connectorx (Rust) reads MySQL/MariaDB about 10 times as fast as any Python driver, but its
streaming reader (``return_type="arrow_stream"``) holds the GIL while it waits for the server:
in-process, a slow query or a frozen host would freeze every thread of the worker (heartbeats, the
stall watchdog, other requests). Its panics (a value its types cannot hold) also bypass Python's
error handling, and its connection pool retries a refused login for 30 seconds. A child process
isolates all of that:

- the parent reads the child's stdout with pyarrow's IPC reader, which waits outside the GIL;
- the pipe is the back-pressure: the child reads no further ahead than the parent consumes, so
  memory stays bounded by a few batches on each side;
- ``stop()`` kills the child, which ends a blocked read at once, whatever the host is doing;
- the connection string (with the password) travels on the child's stdin, never in its argv or
  environment; the child reports a failure as one line on stderr, which the parent redacts.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Collection, Iterator, Sequence
from contextlib import suppress
from pathlib import Path

import pyarrow as pa

from refresh.redact import redact
from refresh.sources.base import SourceError

_ROOT = Path(__file__).resolve().parents[2]
_FAILURE = "connectorx-failure: "
# Kept from the child's stderr: enough for its failure line after any driver noise (a panic's
# backtrace when RUST_BACKTRACE is set, log lines of the connection pool).
_STDERR_LINES = 200
# A pipe of 64 KiB wakes the reader for every few rows of a 5 MB batch; 1 MiB cuts the switches.
_PIPE_BYTES = 1024 * 1024


class ChildRead:
    """One query read by a child process; ``batches()`` once, ``close()`` always."""

    def __init__(
        self,
        url: str,
        query: str,
        setup: Sequence[str],
        batch_rows: int,
        secrets: Collection[str | None],
    ) -> None:
        self._secrets = secrets
        self._stopped = False
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            cwd=_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self._process.stdout is not None
        with suppress(OSError):  # Linux only; the default size works, slower
            fcntl.fcntl(self._process.stdout.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        self._stderr: deque[bytes] = deque(maxlen=_STDERR_LINES)
        self._drain = threading.Thread(target=self._drain_stderr, name="cx-stderr", daemon=True)
        self._drain.start()
        request = {"url": url, "query": query, "setup": list(setup), "batch_rows": batch_rows}
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(request).encode())
            self._process.stdin.close()
        except BrokenPipeError:  # the child died at start; its stderr says why
            pass

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The child's batches; a failure of the child raises ``SourceError`` with its words."""
        assert self._process.stdout is not None
        try:
            reader = pa.ipc.open_stream(self._process.stdout)
            yield from reader
        except (pa.ArrowException, OSError):
            self._process.wait()
            raise self._failure() from None
        if self._process.wait() != 0:
            raise self._failure()

    def stop(self) -> None:
        """Kill the child (thread-safe, idempotent): a blocked ``batches()`` raises at once."""
        self._stopped = True
        with suppress(ProcessLookupError):
            self._process.kill()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def close(self) -> None:
        if self._process.poll() is None:
            self.stop()
        self._process.wait()
        self._drain.join()
        assert self._process.stdout is not None
        self._process.stdout.close()

    def _drain_stderr(self) -> None:
        assert self._process.stderr is not None
        with self._process.stderr:
            for line in self._process.stderr:
                self._stderr.append(line)

    def _failure(self) -> SourceError:
        self._drain.join()
        lines = [line.decode(errors="replace").rstrip() for line in self._stderr]
        reported = [line.removeprefix(_FAILURE) for line in lines if line.startswith(_FAILURE)]
        if reported:
            message = reported[-1]
        elif self._stopped:
            message = "the reader was stopped"
        else:
            message = f"the reader process exited with code {self._process.returncode}"
        return SourceError(redact(message, self._secrets))


def _child() -> None:
    """The child: one query, its batches as an Arrow IPC stream on stdout."""
    request = json.load(sys.stdin)
    out = sys.stdout.buffer
    try:
        import connectorx

        reader = connectorx.read_sql(
            request["url"],
            request["query"],
            return_type="arrow_stream",
            batch_size=request["batch_rows"],
            pre_execution_query=request["setup"] or None,
        )
        with pa.ipc.new_stream(out, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
        out.flush()
    except BrokenPipeError:  # the parent stopped reading: nothing left to tell it
        sys.exit(1)
    except BaseException as error:  # connectorx's panics are BaseExceptions
        message = " ".join(str(error).split()) or type(error).__name__
        sys.stderr.write(f"{_FAILURE}{message}\n")
        sys.stderr.flush()
        sys.exit(1)


if __name__ == "__main__":
    _child()
