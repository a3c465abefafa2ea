"""The reader processes of ``cx_process``: a zygote that forks one reader per query.

Started once per service process, the zygote imports connectorx and pyarrow, then forks a reader
for each request on its control socket (its standard input). Each reader runs one query through
connectorx and writes Arrow IPC to its standard output. A fresh interpreter per read paid that
import every time (70-80 ms, most of a small table's refresh); a fork of the zygote costs a few
milliseconds, and each read still has a process of its own that can be killed.

It runs as a script (``python -P cx_child.py``) rather than ``python -m refresh...``, and imports
only the standard library, connectorx and pyarrow (those in ``main``: the parent imports this
module for ``FAILURE_PREFIX`` and must not load connectorx). The ``refresh`` package (marshmallow,
every source module) and numpy (which pyarrow imports when it can; nothing here uses it) would
make every reader bigger.

The protocol: the parent sends one byte with four file descriptors (SCM_RIGHTS): the reader's
standard input, output and error, and a pipe for its exit status. The zygote answers with the
reader's pid (4 bytes) and, when the reader has ended, writes its exit code (4 bytes, signed) to
the status pipe and closes it. The reader reads its request as JSON on standard input (the
password is never in argv or the environment): connection URL, query, session setup statements
and batch size. A failure is reported as one line on standard error, starting with
``FAILURE_PREFIX``; the parent redacts it.

When the parent dies its end of the control socket closes and the zygote exits. Readers ask the
kernel to kill them when the zygote ends (PR_SET_PDEATHSIG): the parent pauses them (SIGSTOP) for
flow control, and a paused reader would not notice and would hold its server connection for good.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import sys
from collections.abc import Iterable
from contextlib import suppress

FAILURE_PREFIX = "connectorx-failure: "
_PR_SET_PDEATHSIG = 1
_FDS_PER_READER = 4  # standard input, output, error; exit status


def main() -> None:
    """The zygote: forks a reader per request until the parent closes the control socket."""
    sys.modules["numpy"] = None  # type: ignore[assignment]  # pyarrow then runs without it
    import connectorx  # noqa: F401  # what every reader would otherwise import
    import pyarrow  # noqa: F401

    control = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    statuses: dict[int, int] = {}  # reader pid -> the write end of its status pipe

    def reap(*_: object) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            fd = statuses.pop(pid)
            with suppress(OSError):  # the parent closed its end: nobody to tell
                os.write(fd, os.waitstatus_to_exitcode(status).to_bytes(4, "little", signed=True))
            os.close(fd)

    signal.signal(signal.SIGCHLD, reap)
    zygote = os.getpid()
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1, _FDS_PER_READER)
        except ConnectionResetError:
            message = b""
        if not message:
            os._exit(0)  # the parent is gone; the readers follow (PR_SET_PDEATHSIG)
        # Held until the reader is registered, so that its end is reaped with its status pipe.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        pid = os.fork()
        if pid == 0:
            _reader(zygote, control, fds, statuses.values())
        statuses[pid] = fds[3]
        for fd in fds[:3]:
            os.close(fd)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        control.sendall(pid.to_bytes(4, "little"))


def _reader(zygote: int, control: socket.socket, fds: list[int], others: Iterable[int]) -> None:
    """A forked reader: its own standard streams, one query, then ``os._exit``, never a return
    into the zygote's loop."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        with suppress(AttributeError, OSError):  # not on Linux: no prctl
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != zygote:  # it died before PR_SET_PDEATHSIG took effect
            os._exit(code)
        control.close()
        for fd in (*others, fds[3]):  # other readers' status pipes, and its own
            os.close(fd)
        for number, fd in enumerate(fds[:3]):
            os.dup2(fd, number)
            os.close(fd)
        code = _read()
    finally:
        os._exit(code)  # the interpreter's teardown is a noticeable share of a small refresh


def _read() -> int:
    """Run the request on standard input; the exit code."""
    import connectorx
    import pyarrow as pa

    try:
        request = json.loads(sys.stdin.buffer.read())
        reader = connectorx.read_sql(
            request["url"],
            request["query"],
            return_type="arrow_stream",
            batch_size=request["batch_rows"],
            pre_execution_query=request["setup"] or None,
        )
        with pa.ipc.new_stream(_Stdout(), reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    except BrokenPipeError:  # the parent stopped reading: nothing left to tell it
        return 1
    except BaseException as error:  # connectorx's panics are BaseExceptions
        message = " ".join(str(error).split()) or type(error).__name__
        os.write(2, f"{FAILURE_PREFIX}{message}\n".encode(errors="replace"))
        return 1
    return 0


class _Stdout:
    """Standard output for pyarrow's IPC writer, writing every byte it is given.

    The parent pauses this process (SIGSTOP), which cuts a blocked write to the pipe short: a
    buffered ``write`` then returns less than it was given, and pyarrow ignores that count (the
    stream lost bytes in a test). Unbuffered: pyarrow writes whole buffers, megabytes each.
    """

    closed = False

    def write(self, data: bytes) -> int:
        view = memoryview(data).cast("B")
        while view:
            view = view[os.write(1, view) :]
        return len(data)

    def flush(self) -> None:
        pass


if __name__ == "__main__":
    main()
