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

    with TableProgress(5, out, terminal=False, clock=clock) as progress:
        clock.now += 1.25
        progress.report([TableOutcome("public", "a", rows_synced=15_000)])
        clock.now += 2
        progress.report(
            [
                TableOutcome("public", "b", error='column "v": bad\nvalue'),
                TableOutcome("s", "c"),
                TableOutcome("s", "d", unchanged=True),
                TableOutcome("s", "e", held=True, warnings=({"message": "0 rows, was 9"},)),
            ]
        )

    assert out.getvalue().splitlines() == [
        "[1/5] public.a: 15,000 rows (1.2 s)",
        '[2/5] public.b: failed: column "v": bad value (3.2 s)',
        "[3/5] s.c: 0 rows (3.2 s)",
        "[4/5] s.d: unchanged (3.2 s)",
        "[5/5] s.e: held, not published: 0 rows, was 9 (3.2 s)",
    ]


def test_on_a_terminal_one_bar_is_redrawn_and_its_line_ended() -> None:
    out, clock = io.StringIO(), Clock()

    with TableProgress(4, out, terminal=True, clock=clock) as progress:
        first = out.getvalue()
        clock.now += 12.5
        progress.report([TableOutcome("public", "a", rows_synced=1_000)])
        progress.report([TableOutcome("public", "b", error="gone")])
        progress.report([TableOutcome("public", "c", held=True)])

    drawn = out.getvalue()
    assert first == "\r\x1b[K[--------------------] 0/4 tables, 0 rows, 0.0 s"
    assert drawn.endswith(
        "\r\x1b[K[###############-----] 3/4 tables, 1 failed, 1 held, 1,000 rows, 12.5 s\n"
    )
    assert drawn.count("\n") == 1  # redrawn in place, ended once
