"""Data refresh: stream tables into new version directories, then make them current.

Readers resolve ``tables.current_path`` and read that directory; nothing is ever written into a
directory a reader can resolve. Each table goes through the same steps, whose catalog side lives
in ``refresh.versions``: claim the table (single flight), describe it as the source has it now,
stream it into Parquet (all of it, or what is new since the current version:
``refresh.version_build``), store the directory, publish it by compare-and-set (or record why
not).

Two ways through those steps:

- ``refresh_table``: one table, in the request or in its job (mode 3). A table claimed by someone
  else is waited for, within ``REFRESH_WAIT_SECONDS``.
- ``refresh_tables``: a batch of a connection's tables (mode 4). One source connection per
  thread and one catalog connection serve every table; tables are claimed, described and
  published a few at a time, each in one statement, so a small table costs about what its data
  costs. A table another refresh holds is not waited for: the batch finishes the others first,
  then reports the ones still held so its job can come back for them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import pyarrow as pa

from refresh.catalog import PinnedCatalog, Table, TableSettings, TableVersion, VersionStatus
from refresh.catalog.models import DEFAULT_HOLD_BELOW_RATIO
from refresh.change_checks import recorded_fingerprints, take_fingerprints, unchanged
from refresh.common.errors import (
    Conflict,
    NotFound,
    RefreshError,
    ServiceUnavailable,
    public_message,
)
from refresh.lookup import (
    GONE_AT_SOURCE,
    REMOVED_AT_SOURCE,
    load_connection,
    load_settings,
    load_table,
    load_tables,
    source_opener,
    table_not_found,
)
from refresh.prefetch import call_within, read_ahead
from refresh.runtime import Runtime
from refresh.schema_refresh import record_discovery
from refresh.sources import DiscoveredTable, Since, Source, SourceError
from refresh.storage import CacheWriteHandle
from refresh.table_settings import settings_of
from refresh.version_build import build_version, plan_version
from refresh.versions.claims import (
    GONE,
    WAIT_POLL_SECONDS,
    Claim,
    Heartbeat,
    Wanted,
    claim,
    holders,
    still_running,
    wait_for,
)
from refresh.versions.outcomes import (
    Published,
    Written,
    confirm_unchanged,
    discard,
    fail,
    publish,
)

log = logging.getLogger(__name__)

# Batches the source may read ahead of the Parquet writer: enough to keep both busy, few enough
# that memory stays bounded (a batch is at most BATCH_ROWS rows).
READ_AHEAD = 4
# A batch describes tables ahead of its threads, several in one discovery query: no more than
# this many at a time...
DESCRIBE_AHEAD_TABLES = 16
# ...nor more than about this much data (the last versions' sizes): a big table goes alone, so
# its columns are not read long before its rows.
DESCRIBE_AHEAD_BYTES = 64 * 1024 * 1024
# How long a batch keeps polling the tables other refreshes hold once it has done the rest,
# before it hands them back to its job (which comes back for them later).
JOIN_POLL_SECONDS = 2.0
# Outcomes are reported a few at a time, at most this long after the first of them is known:
# live progress moves table by table, without a round trip to Redis for each small table.
REPORT_EVERY_SECONDS = 0.2
# How long a stopped batch waits for the tables in progress to end before it leaves them behind.
STOP_SECONDS = 10.0

TableName = tuple[str, str]
NOTHING_TO_PUBLISH = Published()


@dataclass
class TableRefreshResult:
    connection_id: str
    schema_name: str
    table_name: str
    rows_synced: int
    duration_ms: int
    warnings: list[dict[str, str]] = field(default_factory=list)
    # The source was found as the current version was read (``if_changed``): nothing written.
    unchanged: bool = False
    # The new version was held, not published (``hold_below_ratio``); ``warnings`` say why.
    held: bool = False
    # How the version was made (full, append, merge); None when this refresh made none.
    refresh_mode: str | None = None


@dataclass(frozen=True)
class ChangeRules:
    """What a data refresh does about a source that may not have changed, or looks emptied."""

    # Compare the table's change fingerprint with its current version's first; skip if equal.
    if_changed: bool = False
    # Publish whatever is read: no hold on a version with far fewer rows.
    force: bool = False
    # Read the whole table, whatever its refresh mode.
    full: bool = False


@dataclass(frozen=True)
class TableOutcome:
    """How one table of a batch ended: ``error`` is None when it was refreshed (or joined a
    refresh that published it, or found unchanged), or held."""

    schema_name: str
    table_name: str
    rows_synced: int = 0
    error: str | None = None
    warnings: tuple[dict[str, str], ...] = ()
    unchanged: bool = False
    held: bool = False


@dataclass(frozen=True)
class Joining:
    """A table of a batch that another refresh (``version_id``) holds: its outcome will be this
    table's outcome, unless it fails, and then the batch refreshes the table itself."""

    schema_name: str
    table_name: str
    version_id: int


def refresh_table(
    rt: Runtime,
    connection_id: str,
    schema_name: str,
    table_name: str,
    job_id: str | None = None,
    rules: ChangeRules = ChangeRules(),
) -> TableRefreshResult:
    """Mode 3 of ``POST /refresh``, in the request or as its job.

    With ``rules.if_changed`` a table whose source is found as its current version was read is
    not read again (``unchanged``). A version with far fewer rows than the current one is held
    unless ``rules.force`` (``held``). A refresh of a table that is already being refreshed joins
    it: it waits for that refresh (``REFRESH_WAIT_SECONDS`` at most, then ``RefreshInProgress``)
    and reports its outcome instead of publishing a second version. If that refresh fails, this
    one tries again itself.
    """
    started = time.monotonic()
    key = (schema_name, table_name)
    with rt.catalog.session() as session:
        connection = load_connection(session, connection_id)
        table = load_table(session, connection_id, schema_name, table_name)
        if table.removed_at is not None:
            raise table_not_found(connection_id, schema_name, table_name, REMOVED_AT_SOURCE)
        settings = load_settings(session, [table.id]).get(table.id)
        open_source = source_opener(rt, connection)

    def result(
        rows: int,
        published: Published = NOTHING_TO_PUBLISH,
        mode: str | None = None,
        **flags: bool,
    ) -> TableRefreshResult:
        duration_ms = int((time.monotonic() - started) * 1000)
        return TableRefreshResult(
            connection_id,
            schema_name,
            table_name,
            0 if published.held else rows,
            duration_ms,
            list(published.warnings),
            held=published.held,
            refresh_mode=mode,
            **flags,
        )

    name = f"{schema_name}.{table_name} (connection {connection_id})"
    with open_source() as source:
        fingerprint = None
        if rules.if_changed:
            check = {key: settings.check_sql if settings else None}
            fingerprint = take_fingerprints(rt, source, check)[key]
            if _unchanged(rt, {table.id: fingerprint}):
                return result(0, unchanged=True)
        while True:
            handle = rt.storage.prepare_cache_write(connection_id, schema_name, table_name)
            held = claim(rt, Wanted(table.id, handle.version, handle.url, fingerprint), job_id)
            if not isinstance(held, Claim):
                discard(rt, handle)
                if held is None:
                    raise Conflict(GONE)
                other = wait_for(rt, held.version_id, rt.settings.refresh_wait_seconds, name)
                if other is not None and _published(other):
                    return result(other.rows or 0, mode=other.mode)
                continue
            with Heartbeat(rt, rt.settings.source_stall_timeout_seconds) as heartbeat:
                heartbeat.add([held])
                try:
                    described = describe(rt, source, connection_id, [key])
                    if key not in described:
                        raise table_not_found(connection_id, *key, GONE_AT_SOURCE)
                except BaseException as error:
                    fail(rt, held, handle, error)
                    raise
                written, published = _refresh_claimed(
                    rt,
                    source,
                    described[key],
                    held,
                    handle,
                    heartbeat,
                    _How(rules, settings),
                )
            return result(written.rows_read, published, written.mode)


@dataclass(frozen=True)
class _How:
    """How one table is refreshed: the request's rules, the table's own settings."""

    rules: ChangeRules
    settings: TableSettings | None


def _refresh_claimed(
    rt: Runtime,
    source: Source,
    table: DiscoveredTable,
    held: Claim,
    handle: CacheWriteHandle,
    heartbeat: Heartbeat,
    how: _How,
    failure: Callable[[BaseException], BaseException] = lambda error: error,
) -> tuple[Written, Published]:
    """Write the claimed table's version and publish it (or hold it, by the table's
    ``hold_below_ratio``); on any failure, fail the claim (with ``failure(error)`` as the
    reason) and raise."""
    try:
        written = _write_version(rt, source, table, held, handle, heartbeat, how)
        return written, publish(rt, written, _hold_below(how.rules, how.settings))
    except BaseException as error:
        fail(rt, held, handle, failure(error))
        raise


def refresh_tables(
    rt: Runtime,
    connection_id: str,
    tables: Sequence[TableName],
    job_id: str | None,
    report: Callable[[list[TableOutcome]], None],
    joining: Sequence[Joining] = (),
    threads: int = 1,
    stopping: Callable[[], bool] = lambda: False,
    last_try: bool = False,
    rules: ChangeRules = ChangeRules(),
) -> list[Joining]:
    """A batch of a connection-wide refresh: refresh ``tables`` and settle ``joining`` (tables
    an earlier run of the batch found held), on ``threads`` threads, by ``rules`` (as
    ``refresh_table``; the change check asks the source about every table of the batch at once).

    ``report`` gets the outcome of each table as soon as it is known, a few at a time. A failing
    table never stops the others. Returns the tables other refreshes still hold after a short
    wait (with ``last_try``, those are reported failed instead, naming the refresh). Once
    ``stopping()`` says so, no further table starts; the tables not started are neither
    refreshed nor reported (their job runs them again). An exception (the worker shutting down,
    the job's time limit, the catalog gone) fails the tables in progress cleanly and is raised.
    """
    with rt.catalog.session() as session:
        connection = load_connection(session, connection_id)
        names = [*tables, *((j.schema_name, j.table_name) for j in joining)]
        rows = load_tables(session, connection_id, names)
        settings = load_settings(session, [row.id for row in rows.values()])
        open_source = source_opener(rt, connection)
    batch = _Batch(rt, connection_id, job_id, rows, open_source, threads, stopping)
    batch.rules, batch.settings = rules, settings
    return batch.run(tables, joining, report, last_try)


class _Batch:
    """A batch in progress: the calling thread describes tables ahead (several in one discovery
    query) and reports outcomes; each table then belongs to one thread of the pool from its claim
    to its publish, so a batch holds at most ``threads`` claims (the connection's cap counts
    them) and the catalog's round trips of one table overlap with another's data."""

    def __init__(
        self,
        rt: Runtime,
        connection_id: str,
        job_id: str | None,
        rows: dict[TableName, Table],
        open_source: Callable[[], Source],
        threads: int,
        stopping: Callable[[], bool],
    ) -> None:
        self.rt = rt
        self.connection_id = connection_id
        self.job_id = job_id
        self.rows = rows
        self.open_source = open_source
        self.threads = threads
        self.stopping = stopping
        self.pending: deque[TableName] = deque()
        self.running: dict[Future[TableOutcome | Joining], TableName] = {}
        self.joining: dict[TableName, int] = {}
        # Idle sources of the threads: a thread takes one for a table and gives it back after a
        # clean read, so each thread keeps its connections from one table to the next.
        self.idle: queue.SimpleQueue[Source] = queue.SimpleQueue()
        self.reading: set[Source] = set()
        self.stopped: BaseException | None = None
        self.rules = ChangeRules()
        self.settings: dict[int, TableSettings] = {}
        self.fingerprints: dict[TableName, str | None] = {}
        self.unreported: list[TableOutcome] = []
        self.reported_at = time.monotonic()
        # Each thread's view of the catalog, whose connections it keeps from table to table.
        self.local = threading.local()
        self.catalogs: list[PinnedCatalog] = []

    def run(
        self,
        tables: Sequence[TableName],
        joining: Sequence[Joining],
        report: Callable[[list[TableOutcome]], None],
        last_try: bool,
    ) -> list[Joining]:
        self.report = report
        self.joining = {(j.schema_name, j.table_name): j.version_id for j in joining}
        missing = [n for n in tables if n not in self.rows or self.rows[n].removed_at is not None]
        self._report_errors(missing, lambda n: str(self._not_found(n)))
        self.pending.extend(n for n in tables if n not in missing)
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="refresh-batch")
        describer = self.open_source()
        try:
            with Heartbeat(self.rt, self.rt.settings.source_stall_timeout_seconds) as heartbeat:
                self.heartbeat = heartbeat
                if self.rules.if_changed:
                    self._check_changes(describer)
                self._loop(pool, describer)
                still = self._join(pool, describer)
        except BaseException as error:
            self._stop(error)
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            describer.close()
            while not self.idle.empty():
                self.idle.get().close()
            for catalog in self.catalogs:
                catalog.close()
        if last_try and still:
            self._give_up(still)
            return []
        return [Joining(*name, version_id) for name, version_id in still.items()]

    # -- the calling thread ----------------------------------------------------------------------

    def _loop(self, pool: ThreadPoolExecutor, describer: Source) -> None:
        """Keep the threads fed with described tables; report what they finish."""
        while self.running or (self.pending and not self.stopping()):
            if self.pending and len(self.running) < 2 * self.threads and not self.stopping():
                for table in self._describe_ahead(describer):
                    future = pool.submit(self._refresh, table)
                    self.running[future] = table.key
                continue
            due = self.reported_at + REPORT_EVERY_SECONDS - time.monotonic()
            timeout = max(0.0, due) if self.unreported else None
            done, _ = wait(list(self.running), timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                name = self.running.pop(future)
                result = future.result()
                if isinstance(result, Joining):
                    self.joining[name] = result.version_id
                else:
                    self.unreported.append(result)
            self.heartbeat.progress()
            if time.monotonic() - self.reported_at >= REPORT_EVERY_SECONDS:
                self._flush()
        self._flush()

    def _flush(self) -> None:
        """Report the outcomes gathered since the last report, in one call."""
        outcomes, self.unreported = self.unreported, []
        self.reported_at = time.monotonic()
        if outcomes:
            self.report(outcomes)

    def _check_changes(self, describer: Source) -> None:
        """Take the change fingerprints of every pending table at once (a table's ``check_sql``
        alone), report the unchanged ones, and keep the others' to record with their versions.
        A failing ``check_sql`` fails its table."""
        plain = {n: None for n in self.pending if self._check_sql(n) is None}
        found: dict[TableName, str | None] = {}
        if plain:
            found |= take_fingerprints(self.rt, describer, plain)
        failed = []
        for name in [n for n in self.pending if n not in plain]:
            try:
                found |= take_fingerprints(self.rt, describer, {name: self._check_sql(name)})
            except SourceError as error:
                failed.append(TableOutcome(*name, error=public_message(error)))
        same = _unchanged_ids(self.rt, {self.rows[n].id: f for n, f in found.items()})
        unchanged = [name for name in found if self.rows[name].id in same]
        self.fingerprints = found
        done = set(unchanged) | {(o.schema_name, o.table_name) for o in failed}
        self.pending = deque(n for n in self.pending if n not in done)
        self.report(failed + [TableOutcome(*name, unchanged=True) for name in unchanged])

    def _check_sql(self, name: TableName) -> str | None:
        settings = self.settings.get(self.rows[name].id)
        return settings.check_sql if settings else None

    def _describe_ahead(self, describer: Source) -> list[DiscoveredTable]:
        """Describe the next few tables in one discovery query (up to the describe-ahead limits,
        at least one); a table gone at the source, or a discovery that fails, fails here."""
        names: list[TableName] = []
        size = 0
        while self.pending and len(names) < DESCRIBE_AHEAD_TABLES:
            estimate = self.rows[self.pending[0]].size_bytes or 0
            if names and size + estimate > DESCRIBE_AHEAD_BYTES:
                break
            names.append(self.pending.popleft())
            size += estimate
        try:
            described = describe(self.rt, describer, self.connection_id, names)
        except RefreshError as error:
            if isinstance(error, ServiceUnavailable):
                raise
            reason = public_message(error)
            self._report_errors(names, lambda _: reason)
            return []
        gone = [n for n in names if n not in described]
        self._report_errors(gone, lambda n: str(self._not_found(n, GONE_AT_SOURCE)))
        return [described[n] for n in names if n in described]

    def _join(self, pool: ThreadPoolExecutor, describer: Source) -> dict[TableName, int]:
        """Settle the tables other refreshes held: their outcome when they ended well, a refresh
        of our own when they failed; poll a little while some still run."""
        deadline = time.monotonic() + JOIN_POLL_SECONDS
        while self.joining and not self.stopping():
            ended = holders(self.rt, self.joining.values())
            outcomes = []
            for name, version_id in list(self.joining.items()):
                row = ended.get(version_id)
                if row is not None and row.status == VersionStatus.WRITING:
                    continue
                del self.joining[name]
                if row is not None and _published(row):
                    outcomes.append(TableOutcome(*name, rows_synced=row.rows or 0))
                else:
                    self.pending.append(name)
            if outcomes:
                self.report(outcomes)
            if self.pending:
                self._loop(pool, describer)
                continue
            if time.monotonic() > deadline:
                break
            time.sleep(WAIT_POLL_SECONDS)
        return dict(self.joining)

    def _give_up(self, still: dict[TableName, int]) -> None:
        rows = holders(self.rt, still.values())
        outcomes = []
        for name, version_id in still.items():
            row = rows.get(version_id)
            table = f"{name[0]}.{name[1]} (connection {self.connection_id})"
            reason = still_running(row, table, 0) if row else "it was being refreshed by another"
            outcomes.append(TableOutcome(*name, error=reason))
        self.report(outcomes)

    def _stop(self, error: BaseException) -> None:
        """The batch is stopped by ``error``: no further table starts; the reads in progress are
        interrupted, their tables fail with ``error`` as the reason, and are reported."""
        self.stopped = error
        for future in self.running:
            future.cancel()  # not started: no claim yet, their job runs them again
        for source in list(self.reading):
            source.interrupt()
        started = [f for f in self.running if not f.cancelled()]
        wait(started, timeout=STOP_SECONDS)
        outcomes = [f.result() for f in started if f.done() and not f.exception()]
        self.unreported += [o for o in outcomes if isinstance(o, TableOutcome)]
        try:
            self._flush()
        except Exception:
            log.warning("could not report the tables of the stopped batch")

    # -- a thread of the pool ----------------------------------------------------------------------

    def _refresh(self, table: DiscoveredTable) -> TableOutcome | Joining:
        """One table, from its claim to its publish; its outcome, or the refresh holding it."""
        if self.stopped is not None:
            raise self.stopped
        rt = self._thread_runtime()
        row = self.rows[table.key]
        try:
            handle = rt.storage.prepare_cache_write(self.connection_id, *table.key)
            fingerprint = self.fingerprints.get(table.key)
            wanted = Wanted(row.id, handle.version, handle.url, fingerprint)
            held = claim(rt, wanted, self.job_id)
        except RefreshError as error:
            if isinstance(error, ServiceUnavailable):
                raise  # the catalog is gone: the whole batch stops, and its job runs again
            return TableOutcome(*table.key, error=public_message(error))
        if not isinstance(held, Claim):
            discard(rt, handle)
            if held is None:
                return TableOutcome(*table.key, error=GONE)
            return Joining(*table.key, held.version_id)
        self.heartbeat.add([held])
        try:
            source = self.idle.get_nowait()
        except queue.Empty:
            source = self.open_source()
        self.reading.add(source)
        try:
            how = _How(self.rules, self.settings.get(row.id))
            written, published = _refresh_claimed(
                rt, source, table, held, handle, self.heartbeat, how, self._reason
            )
        except Exception as error:
            source.close()  # the connection may be in any state: the next table opens another
            if not isinstance(error, RefreshError):
                log.exception("refreshing %s.%s failed", *table.key)
            return TableOutcome(*table.key, error=public_message(self._reason(error)))
        except BaseException:
            source.close()
            raise
        finally:
            self.reading.discard(source)
            self.heartbeat.remove([held])
        self.idle.put(source)
        rows = 0 if published.held else written.rows_read
        return TableOutcome(*table.key, rows, None, published.warnings, held=published.held)

    def _thread_runtime(self) -> Runtime:
        """This thread's runtime: the batch's, with a catalog view of the thread's own."""
        rt = getattr(self.local, "rt", None)
        if rt is None:
            catalog = self.rt.catalog.pinned()
            self.catalogs.append(catalog)
            rt = self.local.rt = replace(self.rt, catalog=catalog)
        return rt

    def _reason(self, error: BaseException) -> BaseException:
        """Why a table failed: the batch's own stop when it was stopped (its read was then
        interrupted), else the table's error."""
        return self.stopped or error

    # -- helpers ---------------------------------------------------------------------------------

    def _not_found(self, name: TableName, why: str | None = None) -> NotFound:
        row = self.rows.get(name)
        if why is None:
            why = REMOVED_AT_SOURCE if row is not None and row.removed_at is not None else ""
        return table_not_found(self.connection_id, *name, why)

    def _report_errors(self, names: Sequence[TableName], error: Callable[[TableName], str]) -> None:
        if names:
            self.report([TableOutcome(*n, error=error(n)) for n in names])


def describe(
    rt: Runtime, source: Source, connection_id: str, names: Collection[TableName]
) -> dict[TableName, DiscoveredTable]:
    """The tables' columns as the source has them now, recorded in the catalog; a table missing
    from the answer no longer exists at the source.

    Reading with the catalog's columns would fail on a dropped column and silently miss an added
    one; asking the source (one small query for all of them) makes every data refresh match the
    live table.
    """
    wanted = set(names)
    discovered = call_within(
        lambda: source.discover(only=wanted),
        rt.settings.source_stall_timeout_seconds,
        source.interrupt,
    )
    found = {t.key: t for t in discovered if t.key in wanted}
    record_discovery(rt, connection_id, list(found.values()), scope=wanted)
    return found


def _write_version(
    rt: Runtime,
    source: Source,
    table: DiscoveredTable,
    held: Claim,
    handle: CacheWriteHandle,
    heartbeat: Heartbeat,
    how: _How,
) -> Written:
    """Stream the source into the version's Parquet files (the whole table, or what is new since
    the current version), then store the version's directory.

    The source is read in its own thread; a source that sends nothing for
    ``SOURCE_STALL_TIMEOUT_SECONDS`` fails the refresh, its query interrupted rather than waited
    for.
    """
    stall_seconds = rt.settings.source_stall_timeout_seconds

    @contextmanager
    def read(since: Since | None) -> Iterator[Iterator[pa.RecordBatch]]:
        with read_ahead(
            lambda: source.read(table, since), READ_AHEAD, stall_seconds, source.interrupt
        ) as batches:
            yield counted(batches)

    def counted(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            heartbeat.progress()
            yield batch

    settings = settings_of(how.settings)
    plan = plan_version(rt, held.table_id, table, settings, how.rules.full)
    built = build_version(rt, table, plan, handle, read)
    heartbeat.progress()
    manifest = built.manifest
    url = rt.storage.finalize_cache_write(handle, manifest, on_progress=heartbeat.progress)
    return Written(
        held,
        *table.key,
        url,
        manifest.rows,
        manifest.bytes,
        built.rows_read,
        manifest.mode,
        manifest.watermark,
    )


def _published(row: TableVersion) -> bool:
    """Whether the refresh of ``row`` ended by publishing (it may be superseded or deleted by
    now); a failed or abandoned one has no row count."""
    return row.status != VersionStatus.WRITING and row.rows is not None


def _hold_below(rules: ChangeRules, settings: TableSettings | None) -> float | None:
    """The share of the current version's rows below which a new version is held; None: never
    (``force``)."""
    if rules.force:
        return None
    return settings.hold_below_ratio if settings else DEFAULT_HOLD_BELOW_RATIO


def _unchanged_ids(rt: Runtime, fingerprints: dict[int, str | None]) -> set[int]:
    """The tables (by id) whose fingerprint now is the one recorded with their current version;
    their caches are confirmed fresh."""
    with rt.catalog.session() as session:
        recorded = recorded_fingerprints(session, list(fingerprints))
    same = {i for i, now in fingerprints.items() if unchanged(recorded.get(i), now)}
    if same:
        confirm_unchanged(rt, sorted(same))
    return same


def _unchanged(rt: Runtime, fingerprints: dict[int, str | None]) -> bool:
    return bool(_unchanged_ids(rt, fingerprints))
