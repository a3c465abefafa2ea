"""The reader process of ``cx_process``: one query through connectorx, as Arrow IPC on stdout.

It runs as a script (``python -P cx_child.py``) rather than ``python -m refresh...``, and imports
only the standard library, connectorx and pyarrow (those in ``main``: the parent imports this
module for ``FAILURE_PREFIX`` and must not load connectorx). The ``refresh`` package (marshmallow,
every source module) and numpy (which pyarrow imports when it can; nothing here uses it) made its
start cost more than the rest of a small table's refresh.

The request comes as JSON on stdin (the password is never in argv or the environment): connection
URL, query, session setup statements, batch size and the parent's pid. A failure is reported as
one line on stderr, starting with ``FAILURE_PREFIX``; the parent redacts it.

The parent pauses this process (SIGSTOP) for flow control, so it asks the kernel to kill it when
the parent thread ends (PR_SET_PDEATHSIG, Linux only): paused, it would not notice a dead parent
and would hold its server connection for good.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from contextlib import suppress

FAILURE_PREFIX = "connectorx-failure: "
_PR_SET_PDEATHSIG = 1


def main() -> None:
    with suppress(AttributeError, OSError):  # not on Linux: no prctl
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    sys.modules["numpy"] = None  # type: ignore[assignment]  # pyarrow then runs without it
    try:
        # Imported while the parent prepares the request.
        import connectorx
        import pyarrow as pa

        request = json.load(sys.stdin)
        if os.getppid() != request["parent_pid"]:  # it died before PR_SET_PDEATHSIG took effect
            return
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
        sys.exit(1)
    except BaseException as error:  # connectorx's panics are BaseExceptions
        message = " ".join(str(error).split()) or type(error).__name__
        sys.stderr.write(f"{FAILURE_PREFIX}{message}\n")
        sys.stderr.flush()
        sys.exit(1)
    os._exit(0)  # the interpreter's teardown is a noticeable share of a small table's refresh


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
