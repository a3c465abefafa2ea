"""``process_pending_deletions`` (README, "Deferred deletion"; guarantee 3 of docs/api.md) on both
storages and catalogs."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from config import Settings
from refresh.catalog import PendingDeletion, TableVersion, utcnow
from refresh.runtime import Runtime
from refresh.storage import LEGACY_DATA_FILE, Storage
from refresh.versions import deletions
from refresh.versions.deletions import DeletionRun, process_pending_deletions
from tests.support.backends import Backend
from tests.support.deletions import add_table, add_versions, history, pending, plant_versions, queue
from tests.support.markers import both_catalogs, both_storages


class Recording:
    """A storage that counts the deletions asked of it, and can act before each one."""

    def __init__(self, storage: Storage, before_delete=lambda url: None) -> None:
        self._storage = storage
        self._before_delete = before_delete
        self.deleted: Counter[str] = Counter()
        self._lock = threading.Lock()

    def delete_prefix(self, url: str) -> None:
        self._before_delete(url)
        with self._lock:
            self.deleted[url] += 1
        self._storage.delete_prefix(url)

    def __getattr__(self, name: str) -> object:
        return getattr(self._storage, name)


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


@both_catalogs
@both_storages
def test_due_rows_are_deleted_and_marked_in_the_history_the_others_wait(
    rt: Runtime, cache: Backend
) -> None:
    superseded, failed, later = plant_versions(cache, 3)
    table_id = add_table(rt)
    add_versions(rt, table_id, [superseded, later], "superseded")
    add_versions(rt, table_id, [failed], "failed")
    with rt.catalog.session() as session:
        session.execute(
            text("UPDATE table_versions SET error = 'source went away' WHERE status = 'failed'")
        )
    before = utcnow()
    queue(rt, [superseded, failed], delete_after=before)
    queue(rt, [later], delete_after=before + timedelta(minutes=1))

    assert process_pending_deletions(rt) == DeletionRun(deleted=2)

    assert [cache.holds(url) for url in (superseded, failed, later)] == [False, False, True]
    assert list(pending(rt)) == [later]
    assert pending(rt)[later].claim_token is None
    versions = history(rt)
    for url in (superseded, failed):
        assert versions[url].status == "deleted"
        assert before <= versions[url].deleted_at <= utcnow()
    assert versions[failed].error == "source went away"  # why the refresh failed stays
    assert (versions[later].status, versions[later].deleted_at) == ("superseded", None)


@both_catalogs
@both_storages
def test_a_failing_deletion_is_counted_and_given_up_at_the_fifth_attempt(
    rt: Runtime, cache: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    (url,) = plant_versions(cache, 1)
    add_versions(rt, add_table(rt), [url], "superseded")
    queue(rt, [url], delete_after=utcnow())

    with cache.failing_deletes() as storage:
        failing = replace(rt, storage=storage)
        for attempt in range(1, 5):
            caplog.clear()
            assert process_pending_deletions(failing) == DeletionRun(failed=1)
            row = pending(rt)[url]
            assert row.retry_count == attempt
            assert row.last_error
            (warning,) = messages(caplog, logging.WARNING)
            assert f"could not delete {url} (attempt {attempt} of 5;" in warning
        caplog.clear()
        assert process_pending_deletions(failing) == DeletionRun(given_up=1)

    assert pending(rt) == {}
    (error,) = messages(caplog, logging.ERROR)
    assert error.startswith(f"gave up deleting {url} after 5 failed attempts; its files stay")
    version = history(rt)[url]
    assert version.status == "deletion_failed"
    assert version.deleted_at is None
    assert version.error == (
        f"deleting its directory failed 5 times; given up, the files stay: {row.last_error}"
    )
    assert cache.holds(url)
    assert process_pending_deletions(rt) == DeletionRun()


# What a hand edit or an older version may leave in SQLite's untyped column, due-looking or not.
UNREADABLE = ["soon", "", 42, 1.5, b"\x00", "2026-02-31 10:00:00.000000", "2020-01-01T00:00:00"]


@both_storages
@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)  # PostgreSQL holds timestamps
def test_a_delete_after_that_cannot_be_read_defers_the_row_by_24_hours(
    rt: Runtime, cache: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    *unreadable, due = plant_versions(cache, len(UNREADABLE) + 1)
    queue(rt, [due], delete_after=utcnow())
    with rt.catalog.session() as session:
        for url, value in zip(unreadable, UNREADABLE, strict=True):
            session.execute(
                text(
                    "INSERT INTO pending_deletions (path, delete_after, retry_count, created_at)"
                    " VALUES (:path, :value, 0, '2026-01-01 00:00:00.000000')"
                ),
                {"path": url, "value": value},
            )
    before = utcnow()

    assert process_pending_deletions(rt) == DeletionRun(deleted=1, deferred=len(UNREADABLE))

    assert not cache.holds(due)
    assert all(cache.holds(url) for url in unreadable)
    rows = pending(rt)  # every delete_after reads as a timestamp again
    assert set(rows) == set(unreadable)
    for row in rows.values():
        assert before + timedelta(hours=24) <= row.delete_after <= utcnow() + timedelta(hours=24)
        assert (row.retry_count, row.claim_token) == (0, None)
    warnings = messages(caplog, logging.WARNING)
    assert len(warnings) == len(UNREADABLE)
    for url, warning in zip(unreadable, warnings, strict=True):
        assert warning.startswith(f"the deletion time of {url} cannot be read (")
        assert "not deleted, deferred 24 hours" in warning
    assert process_pending_deletions(rt) == DeletionRun()


@both_catalogs
@both_storages
def test_a_directory_the_catalog_uses_is_never_deleted(
    rt: Runtime, cache: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    current, writing = plant_versions(cache, 2)
    table_id = add_table(rt, current_path=current)
    add_versions(rt, table_id, [current], "current")
    add_versions(rt, table_id, [writing], "writing")
    queue(rt, [current, writing], delete_after=utcnow())

    assert process_pending_deletions(rt) == DeletionRun(current=1, being_written=1)

    assert cache.holds(current)
    assert cache.holds(writing)
    assert list(pending(rt)) == [writing]
    (warning,) = messages(caplog, logging.WARNING)
    assert warning == f"not deleting {current}: it is a table's current version; dropped"

    with rt.catalog.session() as session:  # the refresh failed: its directory must go
        session.execute(
            update(TableVersion).values(status="failed").where(TableVersion.path == writing)
        )
    assert process_pending_deletions(rt) == DeletionRun(deleted=1)
    assert cache.files() == {f"{cache.relative(current)}/{LEGACY_DATA_FILE}"}


@both_catalogs
@both_storages
def test_two_processors_at_once_process_every_row_exactly_once(
    rt: Runtime,
    settings: Settings,
    cache: Backend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deletions, "BATCH_SIZE", 20)
    urls = plant_versions(cache, 200)
    queue(rt, urls, delete_after=utcnow())
    # Each processor's first deletion waits for the other's: both hold claims at the same time.
    both_deleting = threading.Barrier(2, timeout=30)
    first = threading.local()

    def meet(_: str) -> None:
        if not getattr(first, "met", False):
            first.met = True
            both_deleting.wait()

    recording = Recording(rt.storage, before_delete=meet)
    processors = [replace(Runtime.from_settings(settings), storage=recording) for _ in range(2)]
    runs: list[DeletionRun] = []
    errors: list[BaseException] = []

    def process(processor: Runtime) -> None:
        try:
            runs.append(process_pending_deletions(processor))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=process, args=(p,)) for p in processors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for processor in processors:
        processor.catalog.dispose()

    assert errors == []
    assert recording.deleted == Counter(urls)
    assert sorted(run.deleted for run in runs)[0] > 0
    assert sum(run.deleted for run in runs) == 200
    assert pending(rt) == {}
    assert cache.files() == set()


@both_catalogs
@both_storages
def test_the_rows_of_a_processor_killed_mid_batch_wait_until_its_claim_expires(
    rt: Runtime, cache: Backend
) -> None:
    urls = plant_versions(cache, 5)
    queue(rt, urls, delete_after=utcnow())

    class Killed(BaseException):
        """The process died: nothing of it runs any more."""

    def die_at_the_third(url: str) -> None:
        if url == urls[2]:
            raise Killed

    with pytest.raises(Killed):
        process_pending_deletions(replace(rt, storage=Recording(rt.storage, die_at_the_third)))
    assert set(pending(rt)) == set(urls[2:])

    assert process_pending_deletions(rt) == DeletionRun()  # still claimed
    assert all(cache.holds(url) for url in urls[2:])
    with rt.catalog.session() as session:  # CLAIM_SECONDS later
        session.execute(
            update(PendingDeletion).values(claimed_until=utcnow() - timedelta(seconds=1))
        )
    assert process_pending_deletions(rt) == DeletionRun(deleted=3)
    assert cache.files() == set()


@both_catalogs
@both_storages
def test_a_processor_short_of_claim_time_claims_the_rest_of_its_batch_afresh(
    rt: Runtime, cache: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deletions, "CLAIM_MARGIN_SECONDS", deletions.CLAIM_SECONDS)  # no time
    urls = plant_versions(cache, 5)
    queue(rt, urls, delete_after=utcnow())
    recording = Recording(rt.storage)

    assert process_pending_deletions(replace(rt, storage=recording)) == DeletionRun(deleted=5)

    assert recording.deleted == Counter(urls)
    assert pending(rt) == {}
    assert cache.files() == set()


@both_catalogs
def test_a_backlog_of_ten_thousand_rows_goes_in_batches_committed_as_it_goes(
    rt: Runtime, cache: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = plant_versions(cache, 10_000)
    add_versions(rt, add_table(rt), urls, "superseded")
    queue(rt, urls, delete_after=utcnow())
    claimed: list[int] = []
    claim = deletions._claim

    def counting_claim(*args: object) -> tuple[list[object], int]:
        batch, after_id = claim(*args)
        claimed.append(len(batch))
        return batch, after_id

    monkeypatch.setattr(deletions, "_claim", counting_claim)
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:  # another session sees the rows go while the run goes on
        while not done.is_set():
            with rt.catalog.session() as session:
                seen.add(session.scalar(select(func.count()).select_from(PendingDeletion)))
            done.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run = process_pending_deletions(rt)
    finally:
        done.set()
        watcher.join()

    assert run == DeletionRun(deleted=10_000)
    assert max(claimed) == deletions.BATCH_SIZE
    assert sum(claimed) == 10_000
    assert len([count for count in seen if 0 < count < 10_000]) >= 3
    assert pending(rt) == {}
    assert cache.files() == set()
    assert {version.status for version in history(rt).values()} == {"deleted"}
