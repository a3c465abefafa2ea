"""The processes that read MySQL: the zygote a service process starts (``cx_child.py``) and the
readers it forks, found through /proc."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path


def reader_processes(parent: int | str = "self") -> list[int]:
    """Pids of the connectorx readers of ``parent``: its zygote's children."""
    return [reader for zygote in zygotes(parent) for reader in children(zygote)]


def zygotes(parent: int | str = "self") -> list[int]:
    """Pids of ``parent``'s children running ``cx_child.py``, the zygote of its readers."""
    found = []
    for pid in children(parent):
        with suppress(FileNotFoundError):
            if b"cx_child.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


def children(parent: int | str) -> list[int]:
    pids = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        with suppress(FileNotFoundError):  # a thread that ended meanwhile
            pids += [int(pid) for pid in (task / "children").read_text().split()]
    return pids


def process_state(pid: int) -> str:
    """The one-letter state of ``pid`` (``T`` stopped, ``Z`` zombie), ``gone`` once reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"
