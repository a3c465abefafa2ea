"""The reader processes of ``cx_process``: a zygote that forks one reader per query.

Started once per service process (a forking worker starts it before its work horses, which share
it), the zygote imports connectorx and pyarrow, then forks a reader for each request on its
control socket (its standard input). Each reader runs one query through connectorx and writes
Arrow IPC to its standard output. A fresh interpreter per read paid that import every time (70-80
ms, most of a small table's refresh); a fork of the zygote costs a few milliseconds, and each
read still has a process of its own that can be killed.

It runs as a script (``python -P cx_child.py``) rather than ``python -m refresh...``, and imports
only the standard library, connectorx and pyarrow (those in ``main``: the parent imports this
module for ``FAILURE_PREFIX`` and must not load connectorx). The ``refresh`` package (marshmallow,
every source module) and numpy (which pyarrow imports when it can; nothing here uses it) would
make every reader bigger.

The protocol: a request is one message on the control socket (a ``SOCK_SEQPACKET`` pair, so
requests from several processes never mix) carrying five file descriptors (SCM_RIGHTS): the
reader's standard input, output and error, a pipe for its exit status, and the request's own
reply socket. The zygote answers the reader's pid (4 bytes) on the reply socket and, when the
reader has ended, writes its exit code (4 bytes, signed) to the status pipe. The requester keeps
the reply socket open while it uses the reader; if it closes it (or dies: a work horse killed)
while the reader runs, the zygote kills the reader. The reader reads its request as JSON on
standard input (the password is never in argv or the environment): connection URL, query,
session setup statements and batch size. A failure is reported as one line on standard error,
starting with ``FAILURE_PREFIX``; the parent redacts it.

When every process holding the control socket has closed it, the zygote exits. Readers ask the
kernel to kill them when the zygote ends (PR_SET_PDEATHSIG): the parent pauses them (SIGSTOP)
for flow control, and a paused reader would not notice and would hold its server connection for
good.
"""

from __future__ import annotations

import ctypes
import json
import os
import selectors
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

FAILURE_PREFIX = "connectorx-failure: "
_PR_SET_PDEATHSIG = 1
_FDS_PER_READER = 5  # standard input, output, error; exit status; reply socket


def main() -> None:
    """The zygote: forks a reader per request until no process holds the control socket."""
    # A stop signal is for the processes that use the zygote: a worker told to stop (SIGTERM to
    # its process group, Ctrl+C in a terminal) lets its running tables finish, and their readers
    # with them. The readers inherit this; their requester kills them when it gives up a read.
    for number in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    sys.modules["numpy"] = None  # type: ignore[assignment]  # pyarrow then runs without it
    import connectorx  # noqa: F401  # what every reader would otherwise import
    import pyarrow  # noqa: F401

    control = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    zygote = _Zygote(control)
    signal.signal(signal.SIGCHLD, lambda *_: zygote.reap())
    while True:
        for key, _ in zygote.selector.select():
            if key.fileobj is control:
                zygote.serve()
            elif key.fileobj is zygote.woken:
                zygote.woken.recv(4096)  # the handler has run (or runs next)
            else:
                zygote.abandoned(key.data)


class _Zygote:
    """The readers it forked, each with its status pipe and its request's reply socket. SIGCHLD
    is blocked while they change, so that the handler (``reap``) never sees them half done. A
    signal also wakes the loop (``woken``): one that another thread (pyarrow's allocator has one)
    received would otherwise wait for the next request to be handled."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.woken, wake = socket.socketpair()
        for end in (self.woken, wake):
            end.setblocking(False)
        signal.set_wakeup_fd(wake.detach(), warn_on_full_buffer=False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(control, selectors.EVENT_READ)
        self.selector.register(self.woken, selectors.EVENT_READ)
        self.readers: dict[int, tuple[int, socket.socket]] = {}  # pid -> status fd, reply
        self.pid = os.getpid()

    def serve(self) -> None:
        try:
            message, fds, _, _ = socket.recv_fds(self.control, 1, _FDS_PER_READER)
        except ConnectionResetError:
            message = b""
        if not message:
            os._exit(0)  # nobody can ask any more; the readers follow (PR_SET_PDEATHSIG)
        *streams, status, reply_fd = fds
        reply = socket.socket(fileno=reply_fd)
        with _sigchld_blocked():
            pid = os.fork()
            if pid == 0:
                self._reader(streams, status, reply)
            for fd in streams:
                os.close(fd)
            self.readers[pid] = (status, reply)
            self.selector.register(reply, selectors.EVENT_READ, pid)
        with suppress(OSError):  # the requester is gone already: abandoned() follows
            reply.sendall(pid.to_bytes(4, "little"))

    def abandoned(self, pid: int) -> None:
        """The requester closed the reply socket while the reader runs: it is not wanted."""
        with _sigchld_blocked():
            if pid in self.readers:  # not reaped yet, so the pid is still this reader's
                self.selector.unregister(self.readers[pid][1])
                os.kill(pid, signal.SIGKILL)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            status_fd, reply = self.readers.pop(pid)
            with suppress(OSError):  # the requester closed its end: nobody to tell
                code = os.waitstatus_to_exitcode(status)
                os.write(status_fd, code.to_bytes(4, "little", signed=True))
            os.close(status_fd)
            with suppress(KeyError):  # abandoned() unregistered it already
                self.selector.unregister(reply)
            reply.close()

    def _reader(self, streams: list[int], status: int, reply: socket.socket) -> None:
        """A forked reader: its own standard streams, one query, then ``os._exit``, never a
        return into the zygote's loop."""
        code = 1
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(signal.set_wakeup_fd(-1))
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            with suppress(AttributeError, OSError):  # not on Linux: no prctl
                ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != self.pid:  # the zygote died before PR_SET_PDEATHSIG took effect
                os._exit(code)
            self.selector.close()
            self.woken.close()
            self.control.close()
            reply.close()
            os.close(status)
            for other_status, other_reply in self.readers.values():
                os.close(other_status)
                other_reply.close()
            for number, fd in enumerate(streams):
                os.dup2(fd, number)
                os.close(fd)
            code = _read()
        finally:
            os._exit(code)  # the interpreter's teardown is a noticeable share of a small refresh


@contextmanager
def _sigchld_blocked() -> Iterator[None]:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})


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
