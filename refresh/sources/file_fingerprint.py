"""The change fingerprint of a database file (SQLite, DuckDB): its files' identity, size and
change times, read with ``stat``.

Any committed write to the database writes its file or its write-ahead log, which sets that
file's ``ctime`` (the change time, which unlike ``mtime`` no program can set back). The kernel
keeps it with a clock of coarse resolution (a few milliseconds), so two writes in one tick could
leave it unchanged: a file changed within the last ``SETTLE_SECONDS`` gives no fingerprint
(None: "changed"). Once every file is older, any later write makes a ``ctime`` newer than all
of them. A file replaced (renamed over, copied back) has another inode.

It is one fingerprint for the whole file: a write to any table changes every table's.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence

# Far above the kernel's timestamp granularity, and above the clock steps NTP slews through.
SETTLE_SECONDS = 2.0
_PREFIX = "file1:"


def file_fingerprint(path: str, companions: Sequence[str], header: bytes = b"") -> str | None:
    """The fingerprint of database ``path`` with its ``companions`` (a write-ahead log that may
    or may not exist), ``header`` (bytes of the file the engine itself counts changes in) added;
    None while any of them changed too recently, or when ``path`` is missing."""
    now = time.time()
    parts: list[object] = [header.hex()]
    for name in (path, *companions):
        try:
            stat = os.stat(name)
        except FileNotFoundError:
            if name == path:
                return None
            parts.append(None)
            continue
        if now - stat.st_ctime < SETTLE_SECONDS or now - stat.st_mtime < SETTLE_SECONDS:
            return None
        parts.append([stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns])
    return _PREFIX + hashlib.sha256(json.dumps(parts).encode()).hexdigest()
