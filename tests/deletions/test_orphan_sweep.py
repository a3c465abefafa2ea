"""The orphan sweep (README, "Deferred deletion"; guarantee 2 of docs/api.md) on both storages and
catalogs."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from refresh import data_refresh
from refresh.catalog import Table, TableVersion, utcnow
from refresh.connections import register_connection
from refresh.runtime import Runtime
from refresh.storage import LEGACY_DATA_FILE
from refresh.versions.deletions import DeletionRun, process_pending_deletions
from refresh.versions.orphans import SweepResult, sweep_orphans
from tests.support.backends import ROOT, Backend
from tests.support.deletions import (
    add_table,
    add_versions,
    history,
    old_version,
    pending,
    plant_versions,
    queue,
)
from tests.support.dying_refresh import kill_a_refresh
from tests.support.markers import both_catalogs, both_storages
from tests.support.services import Database, PostgresServer
from tests.support.workers import wait_until

pytestmark = [both_catalogs, both_storages]


def test_the_sweep_queues_old_unreferenced_version_directories_and_nothing_else(
    rt: Runtime, cache: Backend
) -> None:
    current, writing, queued, given_up = plant_versions(
        cache, 4, versions=[old_version(n) for n in range(4)]
    )
    (unknown,) = plant_versions(cache, 1, table="u", versions=[old_version(9)])
    (young,) = plant_versions(cache, 1)
    cache.plant(f"{ROOT}/stray.txt")
    cache.plant(f"{ROOT}/c/s/t/not-a-version/{LEGACY_DATA_FILE}")
    table_id = add_table(rt, current_path=current)
    add_versions(rt, table_id, [current], "current")
    add_versions(rt, table_id, [writing], "writing")
    add_versions(rt, table_id, [queued], "superseded")
    add_versions(rt, table_id, [given_up, young], "deletion_failed")
    later = utcnow() + timedelta(hours=1)
    queue(rt, [queued], delete_after=later)
    files = cache.files()
    before = utcnow()

    assert sweep_orphans(rt) == SweepResult(stale_claims=0, queued=2, uploads_aborted=0)

    grace = timedelta(seconds=rt.settings.deletion_grace_seconds)
    rows = pending(rt)
    assert set(rows) == {queued, given_up, unknown}
    assert rows[queued].delete_after == later
    for url in (given_up, unknown):
        assert before + grace <= rows[url].delete_after <= utcnow() + grace
    assert cache.files() == files
    assert sweep_orphans(rt).queued == 0


class TestKilledMidWrite:
    @pytest.fixture
    def environ(self, environ: dict[str, str]) -> dict[str, str]:
        """Every unreferenced directory is an orphan: no age protects one, references must."""
        return {**environ, "ORPHAN_MIN_AGE_SECONDS": "0"}

    def test_a_refresh_killed_mid_write_leaves_nothing_once_swept(
        self,
        rt: Runtime,
        cache: Backend,
        environ: dict[str, str],
        postgres: PostgresServer,
        pg_source: Database,
    ) -> None:
        with postgres.connect(pg_source) as conn:
            # About 7 MB of Parquet that does not compress: an S3 upload of several parts.
            conn.execute(
                "CREATE TABLE t AS SELECT g AS id,"
                " decode(md5(g::text) || md5((-g)::text), 'hex') AS b"
                " FROM generate_series(1, 220000) g"
            )
            conn.execute("CREATE TABLE base AS SELECT generate_series(1, 10) AS id")
            # Read while the test holds advisory lock 7: a refresh in flight for as long as needed.
            conn.execute(
                "CREATE VIEW in_flight AS SELECT base.id FROM base, pg_advisory_xact_lock_shared(7)"
            )
        register_connection(rt, "src", "postgres", pg_source.config())
        data_refresh.refresh_table(rt, "src", "public", "t")
        previous = current_path(rt, "t")

        killed = kill_a_refresh(environ, "src", "public", "t")
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        (claim,) = writing(rt)
        assert current_path(rt, "t") == previous
        left_open = cache.open_uploads()  # S3: the upload was cut off; nothing under the path
        assert cache.holds(claim.path) or left_open

        with postgres.connect(pg_source) as lock:
            lock.execute("SELECT pg_advisory_lock(7)")
            refreshed: list[int] = []
            in_flight = threading.Thread(
                target=lambda: refreshed.append(
                    data_refresh.refresh_table(rt, "src", "public", "in_flight").rows_synced
                )
            )
            in_flight.start()
            wait_until(lambda: len(writing(rt)) == 2, timeout=30, what="no refresh in flight")
            with rt.catalog.session() as session:  # the killed process beats no more: stale later
                session.execute(
                    update(TableVersion)
                    .where(TableVersion.id == claim.id)
                    .values(heartbeat_at=utcnow() - timedelta(hours=1))
                )

            assert sweep_orphans(rt) == SweepResult(
                stale_claims=1, queued=0, uploads_aborted=len(left_open)
            )
            assert process_pending_deletions(rt) == DeletionRun(deleted=1)
            (still_writing,) = writing(rt)
            lock.execute("SELECT pg_advisory_unlock(7)")
        in_flight.join(timeout=60)

        assert refreshed == [10]
        assert current_path(rt, "in_flight") == still_writing.path
        assert current_path(rt, "t") == previous
        assert cache.read(previous).num_rows == 220000
        assert len(cache.versions()) == 2
        assert cache.holds(previous)
        assert cache.holds(still_writing.path)
        assert cache.open_uploads() == set()
        version = history(rt)[claim.path]
        assert version.status == "deleted"
        assert version.error.startswith("abandoned: ")
        assert version.deleted_at is not None


def writing(rt: Runtime) -> list[TableVersion]:
    with rt.catalog.session() as session:
        return list(session.scalars(select(TableVersion).where(TableVersion.status == "writing")))


def current_path(rt: Runtime, table: str) -> str | None:
    with rt.catalog.session() as session:
        return session.scalar(select(Table.current_path).where(Table.table_name == table))
