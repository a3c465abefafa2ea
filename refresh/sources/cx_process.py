"""Reading a query with connectorx in a child process that streams Arrow IPC back.

connectorx (Rust) reads MySQL/MariaDB many times as fast as any Python driver, but its
streaming reader (``return_type="arrow_stream"``) holds the GIL while it waits for the server:
in-process, a slow query or a frozen host would freeze every thread of the worker (heartbeats, the
stall watchdog, other requests). Its panics (a value its types cannot hold) also bypass Python's
error handling, and its connection pool retries a refused login for 30 seconds. A child process
(``cx_child``, forked by a zygote that has imported connectorx and pyarrow) isolates all of that:

- the parent reads the child's stdout with pyarrow's IPC reader, which waits outside the GIL;
- ``stop()`` kills the child, which ends a blocked read at once, whatever the host is doing;
- the connection string (with the password) travels on the child's stdin, never in its argv or
  environment; the child reports a failure as one line on stderr, which the parent redacts.

The child starts when ``ChildRead`` is built and waits for its request, so the caller can do
other work (a handshake) meanwhile. The zygote is started by ``prepare()`` (a forking worker
calls it before it forks its work horses, which share it) or by the first read of a process, and
again if it died; it ends when every process holding its control socket has ended.

Memory stays bounded by flow control: connectorx reads the server in a thread of its own into an
unbounded queue, so a full pipe blocks the child's writer but not that thread, and a consumer
slower than the server would let the child buffer the whole table. The child is
ahead as soon as the pipe is half full while the parent is not reading it: ``_PacedPipe`` then
pauses it (SIGSTOP) and continues it (SIGCONT) when the parent reads again. The server meanwhile
waits on its socket (the MySQL session allows that for an hour).
"""

from __future__ import annotations

import array
import atexit
import fcntl
import json
import os
import select
import signal
import socket
import subprocess
import sys
import termios
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import suppress
from typing import IO, ClassVar

import pyarrow as pa

from refresh.common.redact import redact
from refresh.sources import cx_child
from refresh.sources.base import SourceError

# Read from the end of the child's stderr: enough for its failure line after any driver noise (a
# panic's backtrace when RUST_BACKTRACE is set, log lines of the connection pool).
_STDERR_TAIL_BYTES = 64 * 1024
# A pipe of 64 KiB wakes the reader every few hundred rows; 1 MiB (about a batch) cuts the switches.
_PIPE_BYTES = 1024 * 1024
# The zygote answers a request in milliseconds; one that has not answered in this time is taken
# for dead (and replaced).
_ANSWER_SECONDS = 30
# How often the flow control looks at the pipe: what the child produces meanwhile is what it may
# buffer beyond the pipe (a fraction of a batch).
_PACE_SECONDS = 0.01


class ChildRead:
    """One query read by a child process: ``start()``, ``batches()`` once, ``close()`` always."""

    def __init__(self, secrets: Collection[str | None]) -> None:
        self._secrets = secrets
        self._stopped = False
        self._process = _Zygote.fork()
        self._stdout = _PacedPipe(self._process)

    def start(self, url: str, query: str, setup: Sequence[str], batch_rows: int) -> None:
        """Send the child its query (the password travels here, on stdin)."""
        request = {
            "url": url,
            "query": query,
            "setup": list(setup),
            "batch_rows": batch_rows,
        }
        try:
            self._process.stdin.write(json.dumps(request).encode())
            self._process.stdin.close()
        except BrokenPipeError:  # the child died at start; its stderr says why
            pass

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The child's batches; a failure of the child raises ``SourceError`` with its words."""
        try:
            yield from pa.ipc.open_stream(self._stdout)
        except (pa.ArrowException, OSError):
            self._wait()
            raise self._failure() from None
        if self._wait() != 0:
            raise self._failure()

    def stop(self) -> None:
        """Kill the child (thread-safe, idempotent): a blocked ``batches()`` raises at once."""
        self._stopped = True
        self._process.kill()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def close(self) -> None:
        if self._process.poll() is None:
            self.stop()
        self._wait()
        self._stdout.close()
        self._process.close()

    def _wait(self) -> int:
        self._stdout.stop_pacing()  # nothing left to pace, and the pidfd closes
        return self._process.wait()

    def _failure(self) -> SourceError:
        lines = self._process.stderr_tail().decode(errors="replace").splitlines()
        prefix = cx_child.FAILURE_PREFIX
        reported = [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]
        if reported:
            message = reported[-1]
        elif self._stopped:
            message = "the reader was stopped"
        else:
            message = f"the reader process exited with code {self._process.returncode}"
        return SourceError(redact(message, self._secrets))


class _PacedPipe:
    """The child's stdout for pyarrow's IPC reader, pausing the child while nobody reads it.

    A watcher thread pauses the child when the parent is not reading and the pipe is half full;
    every read continues it first, so the parent never waits on a paused child. The lock makes
    "not reading" and the pause one step.

    Batches are read into buffers of Arrow's memory pool (``read_buffer``, which pyarrow prefers):
    as Python bytes, the message bodies went through malloc, whose heap kept far more than the
    pool did (bench/README.md, "Figures behind the code").
    """

    closed = False

    def __init__(self, process: _Reader) -> None:
        self._process = process
        self._fd = process.stdout.fileno()
        with suppress(OSError):  # the default size works, with more wake-ups
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        self._half = fcntl.fcntl(self._fd, fcntl.F_GETPIPE_SZ) // 2
        self._lock = threading.Lock()
        self._reading = False
        self._paused = False
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="cx-pace", daemon=True)
        self._watcher.start()

    def read(self, size: int) -> bytes:
        return self.read_buffer(size).to_pybytes()

    def read_buffer(self, size: int) -> pa.Buffer:
        """``size`` bytes, fewer only at the end of the stream."""
        buffer = pa.allocate_buffer(size)
        view = memoryview(buffer)  # type: ignore[arg-type]
        with self._lock:
            self._reading = True
            self._pace(paused=False)
        try:
            done = 0
            while done < size and (got := os.readv(self._fd, [view[done:]])):
                done += got
        finally:
            with self._lock:
                self._reading = False
        return buffer if done == size else buffer.slice(0, done)

    def stop_pacing(self) -> None:
        """End the watcher, leaving the child running; idempotent."""
        self._done.set()
        if self._watcher.is_alive():
            self._watcher.join()
        with self._lock:
            self._pace(paused=False)

    def close(self) -> None:
        """Stop pacing; the pipe itself is the reader's to close (``_Reader.close``)."""
        self.stop_pacing()
        self.closed = True

    def _watch(self) -> None:
        unread = array.array("i", [0])
        while not self._done.wait(_PACE_SECONDS):
            with self._lock:
                if self._reading or self._paused:
                    continue
                fcntl.ioctl(self._fd, termios.FIONREAD, unread)
                if unread[0] >= self._half:
                    self._pace(paused=True)

    def _pace(self, paused: bool) -> None:
        if self._paused != paused:
            self._process.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)
            self._paused = paused


class _Reader:
    """A reader forked by the zygote, with the part of ``subprocess.Popen`` that ``ChildRead``
    uses. Signals go through a pidfd, opened while the reader waits for its request (so it is
    alive): the zygote reaps it, and its pid could be reused after that. Its stderr is a file in
    memory, read once it has ended: no thread drains it meanwhile. Its request's reply socket
    stays open until ``close()``: closed earlier (this process died), the zygote kills it."""

    returncode: int | None = None

    def __init__(
        self, pid: int, stdin: int, stdout: int, stderr: int, status: int, reply: socket.socket
    ) -> None:
        self.stdin: IO[bytes] = open(stdin, "wb")  # noqa: SIM115  # closed by close()
        self.stdout: IO[bytes] = open(stdout, "rb", buffering=0)  # noqa: SIM115
        self._stderr: IO[bytes] = open(stderr, "rb")  # noqa: SIM115
        self._status = status
        self._reply = reply
        self._signalling = threading.Lock()  # the pidfd is not closed while it is used
        self._waiting = threading.Lock()
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # it has ended already; its status says how
            self._pidfd = None

    def send_signal(self, sig: int) -> None:
        with self._signalling:
            if self._pidfd is not None:
                with suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._pidfd, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def poll(self) -> int | None:
        if self._waiting.acquire(blocking=False):  # else a wait() is under way: not ended yet
            try:
                if self.returncode is None and select.select([self._status], [], [], 0)[0]:
                    self.returncode = self._ended()
            finally:
                self._waiting.release()
        return self.returncode

    def wait(self) -> int:
        with self._waiting:
            if self.returncode is None:
                self.returncode = self._ended()
            return self.returncode

    def stderr_tail(self) -> bytes:
        """The end of what the reader wrote to its stderr (complete once it has ended)."""
        size = os.fstat(self._stderr.fileno()).st_size
        start = max(0, size - _STDERR_TAIL_BYTES)
        return os.pread(self._stderr.fileno(), size - start, start)

    def close(self) -> None:
        for stream in (self.stdin, self.stdout, self._stderr, self._reply):
            stream.close()

    def _ended(self) -> int:
        """The exit code (-9 when the zygote died first: that killed the reader)."""
        code = _read_exactly(self._status, 4)
        os.close(self._status)
        with self._signalling:
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        return int.from_bytes(code, "little", signed=True) if len(code) == 4 else -9


class _ZygoteGone(Exception):
    """The zygote closed its control socket or a request's reply socket: it has ended."""


class _Zygote:
    """The process that forks the readers (see ``cx_child``). A forked process (an RQ work
    horse) shares its parent's: requests from several processes never mix, each has a reply
    socket of its own."""

    _current: ClassVar[_Zygote | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-P", cx_child.__file__], stdin=theirs, stdout=subprocess.DEVNULL
            )
        self._control = ours
        self._parent = os.getpid()

    @classmethod
    def started(cls) -> _Zygote:
        with cls._lock:
            if cls._current is None:
                cls._current = cls()
            return cls._current

    @classmethod
    def fork(cls) -> _Reader:
        """A new reader, waiting for its request. A zygote that ended is replaced, once."""
        for _ in range(2):
            try:
                return cls._fork_once()
            except _ZygoteGone as error:
                gone = error
        raise SourceError(
            f"the connectorx reader could not be started ({gone}); the service's log shows why"
        )

    @classmethod
    def _fork_once(cls) -> _Reader:
        zygote = cls.started()
        try:
            return zygote._fork()
        except _ZygoteGone:
            with cls._lock:
                if cls._current is zygote:
                    cls._current = None
            zygote.close()
            raise

    @classmethod
    def end(cls) -> None:
        with cls._lock:
            zygote, cls._current = cls._current, None
        if zygote is not None:
            zygote.close()

    @classmethod
    def after_fork(cls) -> None:
        """In a forked process: the parent's zygote serves it too, but one of the parent's
        threads may have held the lock."""
        cls._lock = threading.Lock()

    def close(self) -> None:
        self._control.close()
        if os.getpid() == self._parent:  # only its parent can reap it
            self._process.kill()  # its readers die with it (PR_SET_PDEATHSIG)
            self._process.wait()

    def _fork(self) -> _Reader:
        stdin, stdout, status = os.pipe(), os.pipe(), os.pipe()
        stderr = os.memfd_create("cx-reader-stderr")
        reply, reply_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        reply.settimeout(_ANSWER_SECONDS)
        theirs = [stdin[0], stdout[1], os.dup(stderr), status[1], reply_theirs.detach()]
        why = "it ended"
        try:
            try:
                socket.send_fds(self._control, [b"r"], theirs)
            finally:
                # Before the answer: if the zygote dies with the request unread, the reply socket
                # closes with it, and the wait below ends.
                for fd in theirs:
                    os.close(fd)
            answer = reply.recv(4)
        except OSError as error:  # a timeout included
            answer, why = b"", str(error) or type(error).__name__
        if len(answer) < 4:
            for fd in (stdin[1], stdout[0], stderr, status[0]):
                os.close(fd)
            reply.close()
            raise _ZygoteGone(why)
        pid = int.from_bytes(answer, "little")
        return _Reader(pid, stdin[1], stdout[0], stderr, status[0], reply)


def prepare() -> None:
    """Start the zygote now: a forking worker does, so that its work horses share it instead of
    each starting one for its first MySQL read."""
    _Zygote.started()


def _read_exactly(fd: int, size: int) -> bytes:
    """``size`` bytes, fewer only when the other end closed."""
    data = b""
    while len(data) < size and (chunk := os.read(fd, size - len(data))):
        data += chunk
    return data


os.register_at_fork(after_in_child=_Zygote.after_fork)
atexit.register(_Zygote.end)
