"""Change fingerprints and ``check_sql``, run once per source (``Source.fingerprints``,
``Source.run_check``): every change committed before the check changes the fingerprint, an
untouched table keeps it.

A fingerprint may be None for a while after a write (statistics or change times settling, see
docs/decisions.md, D69-D71); ``settled`` polls until the source gives one, so each comparison
is between two real fingerprints, not "None means changed".
"""

from __future__ import annotations

import threading
import time

import pytest

from refresh.sources import Source, SourceError
from tests.support.services import Database, MariaDBServer
from tests.support.source_kinds import SourceKind, wait_until_reading
from tests.support.workers import wait_until

fingerprinted = pytest.mark.parametrize(
    "kind", ["postgres", "mysql", "sqlite", "duckdb"], indirect=True
)
each_source = pytest.mark.parametrize(
    "kind", ["postgres", "mysql", "sqlite", "duckdb", "sqlalchemy"], indirect=True
)
SETTLE_DEADLINE_SECONDS = 60
# MariaDB refreshes its INNODB_TRX view only once nobody has read it for 0.1 s: polled faster,
# the MySQL fingerprint would keep seeing a transaction long ended.
POLL_SECONDS = 0.25
INTERRUPT_SECONDS = 5

CHANGES: dict[str, str | None] = {
    "insert": "INSERT INTO {t} VALUES (4, 'd')",
    "update": "UPDATE {t} SET v = 'z' WHERE id = 1",
    "delete": "DELETE FROM {t} WHERE id = 2",
    "truncate": None,  # the kind's own
    "add a column": "ALTER TABLE {t} ADD COLUMN w INTEGER",
    "drop a column": "ALTER TABLE {t} DROP COLUMN v",
}


def make_tables(kind: SourceKind) -> None:
    for name in ("t", "other"):
        kind.execute(
            f"CREATE TABLE {kind.quote(name)} (id INTEGER, v VARCHAR(10))",
            rows=(
                f"INSERT INTO {kind.quote(name)} VALUES (?, ?)",
                [(1, "a"), (2, "b"), (3, "c")],
            ),
        )


def settled(source: Source, kind: SourceKind, table: str = "t") -> str:
    """The table's fingerprint, once the source gives one."""
    key = (kind.schema, table)
    found: dict[tuple[str, str], str | None] = {}

    def given() -> bool:
        found.update(source.fingerprints([key]))
        return found[key] is not None

    wait_until(given, SETTLE_DEADLINE_SECONDS, f"no fingerprint of {key}", POLL_SECONDS)
    fingerprint = found[key]
    assert fingerprint is not None
    return fingerprint


@fingerprinted
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_committed_change_changes_the_fingerprint(kind: SourceKind, change: str) -> None:
    make_tables(kind)
    source = kind.source()
    before = settled(source, kind)

    statement = CHANGES[change] or kind.truncate.replace("{}", "{t}")
    kind.execute(statement.format(t=kind.quote("t")))

    assert source.fingerprints([(kind.schema, "t")])[kind.schema, "t"] != before
    assert settled(source, kind) != before


@fingerprinted
def test_an_untouched_table_keeps_its_fingerprint(kind: SourceKind) -> None:
    make_tables(kind)
    source = kind.source()
    first = settled(source, kind)

    assert settled(kind.source(), kind) == first


@pytest.mark.parametrize("kind", ["postgres", "mysql"], indirect=True)
def test_a_write_to_another_table_keeps_the_fingerprint_of_a_server_table(
    kind: SourceKind,
) -> None:
    make_tables(kind)
    source = kind.source()
    first = settled(source, kind)
    other = settled(source, kind, "other")

    kind.execute(f"INSERT INTO {kind.quote('other')} VALUES (9, 'x')")

    assert settled(source, kind, "other") != other
    assert settled(source, kind) == first


@pytest.mark.parametrize("kind", ["postgres", "mysql"], indirect=True)
def test_views_and_missing_tables_of_a_server_have_no_fingerprint(kind: SourceKind) -> None:
    """(A file's fingerprint is the file's, views included.)"""
    make_tables(kind)
    kind.execute(f"CREATE VIEW {kind.quote('view')} AS SELECT id FROM {kind.quote('t')}")
    keys = [(kind.schema, "view"), (kind.schema, "missing"), (kind.schema, "t")]

    found = kind.source().fingerprints(keys)

    assert found[kind.schema, "view"] is None
    assert found[kind.schema, "missing"] is None
    assert set(found) == set(keys)


@pytest.mark.parametrize("kind", ["sqlalchemy"], indirect=True)
def test_a_sqlalchemy_url_has_no_fingerprint(kind: SourceKind) -> None:
    make_tables(kind)
    assert kind.source().fingerprints([(kind.schema, "t")]) == {(kind.schema, "t"): None}


@each_source
def test_check_sql_answers_its_one_row(kind: SourceKind) -> None:
    make_tables(kind)
    t = f"{kind.quote(kind.schema)}.{kind.quote('t')}"
    source = kind.source()

    count, largest = source.run_check(f"SELECT count(*), max(id) FROM {t}")

    assert (int(count), int(largest)) == (3, 3)
    with pytest.raises(SourceError, match="check_sql returned more than one row"):
        source.run_check(f"SELECT id FROM {t}")
    with pytest.raises(SourceError, match="check_sql returned no row"):
        source.run_check(f"SELECT id FROM {t} WHERE id > 10")
    with pytest.raises(SourceError):
        source.run_check(f"SELECT count(*) FROM {kind.quote(kind.schema)}.{kind.quote('nope')}")


@pytest.mark.parametrize("kind", ["postgres"], indirect=True)
def test_check_sql_runs_in_a_read_only_transaction(kind: SourceKind) -> None:
    kind.execute("CREATE SEQUENCE s")
    with pytest.raises(SourceError, match="read-only transaction"):
        kind.source().run_check("SELECT nextval('s')")


@pytest.mark.parametrize("kind", ["mysql"], indirect=True)
def test_an_open_transaction_of_the_same_second_holds_an_innodb_fingerprint_back(
    kind: SourceKind, mariadb: MariaDBServer, mysql_source: Database
) -> None:
    """InnoDB stamps ``UPDATE_TIME`` with the committing transaction's start second: one begun in
    the second of the last write could commit that same stamp later, with rows changed."""
    make_tables(kind)
    source = kind.source()
    key = (kind.schema, "t")
    with mariadb.connect(mysql_source) as writer, mariadb.connect(mysql_source) as pending:
        writes = writer.cursor()
        for _ in range(10):  # until both transactions begin in the same second
            with pending.cursor() as cursor:
                cursor.execute("ROLLBACK")
                cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            writes.execute("INSERT INTO t VALUES (5, 'e')")
            writes.execute(
                "SELECT t.UPDATE_TIME = x.trx_started FROM information_schema.TABLES t "
                "JOIN information_schema.INNODB_TRX x ON x.trx_mysql_thread_id = %s "
                "WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_NAME = 't'",
                (pending.thread_id(),),
            )
            [(same_second,)] = writes.fetchall()
            if same_second:
                break
        assert same_second, "never began both transactions in one second"

        def write_is_old() -> bool:
            writes.execute(
                "SELECT NOW() >= UPDATE_TIME + INTERVAL 3 SECOND FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't'"
            )
            return bool(writes.fetchone()[0])

        wait_until(write_is_old, SETTLE_DEADLINE_SECONDS, "the write never got old", POLL_SECONDS)
        assert source.fingerprints([key]) == {key: None}

        pending.rollback()
    assert settled(source, kind)


@pytest.mark.parametrize(
    "kind", ["postgres", "mysql", "sqlite", "duckdb", "sqlalchemy"], indirect=True
)
def test_interrupt_stops_a_check_blocked_in_a_long_query(kind: SourceKind) -> None:
    kind.slow_view("slow")
    source = kind.source()
    outcome: list[BaseException] = []

    def check() -> None:
        try:
            source.run_check(f"SELECT count(*) FROM {kind.quote('slow')}")
        except BaseException as error:
            outcome.append(error)

    checking = threading.Thread(target=check, daemon=True)
    checking.start()
    wait_until_reading(source)
    interrupted = time.monotonic()
    while checking.is_alive() and time.monotonic() - interrupted < INTERRUPT_SECONDS:
        source.interrupt()
        checking.join(0.2)

    assert not checking.is_alive(), "the check did not end after interrupt()"
    [error] = outcome
    assert isinstance(error, SourceError)
    assert "interrupted" in str(error)
