"""A PostgreSQL view whose every read takes as long as the test says, changeable at any time.

For tests that need a refresh to be running at a given moment (a worker stopped, Redis gone):
``delay(seconds)`` sets how long each later read of the view sleeps before its rows come.
"""

from __future__ import annotations

from tests.support.services import Database, PostgresServer


class SlowView:
    def __init__(self, postgres: PostgresServer, db: Database, name: str = "t") -> None:
        self._postgres = postgres
        self._db = db
        self.name = name
        with postgres.connect(db) as conn:
            conn.execute(f"CREATE TABLE {name}_delay (seconds float)")
            conn.execute(f"INSERT INTO {name}_delay VALUES (0)")
            conn.execute(
                f"CREATE VIEW {name} AS SELECT g AS id FROM generate_series(1, 1000) g, "
                f"pg_sleep((SELECT seconds FROM {name}_delay))"
            )

    def delay(self, seconds: float) -> None:
        with self._postgres.connect(self._db) as conn:
            conn.execute(f"UPDATE {self.name}_delay SET seconds = %s", (seconds,))
