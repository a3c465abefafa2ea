"""The progress of ``flask refresh run`` on a connection: a bar on a terminal, lines elsewhere."""

from __future__ import annotations

import io

from refresh.cli.progress import TableProgress
from refresh.data_refresh import TableOutcome


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_elsewhere_each_table_is_a_line_as_it_ends() -> None:
    out, clock = io.StringIO(), Clock()

    with TableProgress(3, out, terminal=False, clock=clock) as progress:
        clock.now += 1.25
        progress.report([TableOutcome("public", "a", rows_synced=15_000)])
        clock.now += 2
        progress.report(
            [TableOutcome("public", "b", error='column "v": bad\nvalue'), TableOutcome("s", "c")]
        )

    assert out.getvalue().splitlines() == [
        "[1/3] public.a: 15,000 rows (1.2 s)",
        '[2/3] public.b: failed: column "v": bad value (3.2 s)',
        "[3/3] s.c: 0 rows (3.2 s)",
    ]


def test_on_a_terminal_one_bar_is_redrawn_and_its_line_ended() -> None:
    out, clock = io.StringIO(), Clock()

    with TableProgress(4, out, terminal=True, clock=clock) as progress:
        first = out.getvalue()
        clock.now += 12.5
        progress.report([TableOutcome("public", "a", rows_synced=1_000)])
        progress.report([TableOutcome("public", "b", error="gone")])

    drawn = out.getvalue()
    assert first == "\r\x1b[K[------------------------------] 0/4 tables, 0 rows, 0.0 s"
    assert drawn.endswith(
        "\r\x1b[K[###############---------------] 2/4 tables, 1 failed, 1,000 rows, 12.5 s\n"
    )
    assert drawn.count("\n") == 1  # redrawn in place, ended once
