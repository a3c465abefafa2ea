"""How far a connection-wide refresh has got: tables done of the total, rows, time elapsed.

On a terminal, one line redrawn in place (a bar), at each outcome and every second, so that the
time moves during a long table. Anywhere else (a pipe, a log, cron's mail), one plain line per
table as it ends: a redrawn line would be a heap of carriage returns there.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from refresh.cli.formatting import count, one_line, seconds
from refresh.data_refresh import TableOutcome

BAR_WIDTH = 20
TICK_SECONDS = 1.0
_CLEAR_LINE = "\r\x1b[K"


class TableProgress:
    """A context manager: ``report`` is the ``report`` callback of the refresh; leaving the block
    ends the bar's line, so what is written next starts on a line of its own."""

    def __init__(
        self,
        total: int,
        out: TextIO,
        terminal: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.out = out
        self.terminal = terminal
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.failed = 0
        self.held = 0
        self.rows = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)

    def __enter__(self) -> TableProgress:
        if self.terminal:
            self._draw()
            self._ticker.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.terminal:
            self._stopped.set()
            self._ticker.join()
            self._draw()
            self._write("\n")

    def report(self, outcomes: list[TableOutcome]) -> None:
        with self._lock:
            for outcome in outcomes:
                self.done += 1
                self.rows += outcome.rows_synced
                self.held += outcome.held
                self.failed += outcome.error is not None
                if not self.terminal:
                    self._write(self._table_line(outcome) + "\n")
        if self.terminal:
            self._draw()

    def _table_line(self, outcome: TableOutcome) -> str:
        name = f"{outcome.schema_name}.{outcome.table_name}"
        if outcome.error is not None:
            what = f"failed: {one_line(outcome.error)}"
        elif outcome.held:
            why = "; ".join(one_line(w["message"]) for w in outcome.warnings)
            what = f"held, not published{': ' + why if why else ''}"
        elif outcome.unchanged:
            what = "unchanged"
        else:
            what = count(outcome.rows_synced, "row")
        return f"[{self.done}/{self.total}] {name}: {what} ({seconds(self.clock() - self.started)})"

    def _bar(self) -> str:
        filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
        failed = f", {self.failed} failed" if self.failed else ""
        held = f", {self.held} held" if self.held else ""
        line = (
            f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {self.done}/{self.total} tables"
            f"{failed}{held}, {count(self.rows, 'row')}, {seconds(self.clock() - self.started)}"
        )
        return line[: max(1, shutil.get_terminal_size().columns - 1)]

    def _draw(self) -> None:
        with self._lock:
            self._write(_CLEAR_LINE + self._bar())

    def _tick(self) -> None:
        while not self._stopped.wait(TICK_SECONDS):
            self._draw()

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
