"""Building a table's new version directory: a full read of the table, or an incremental one
(append, merge) on top of the current version.

An incremental refresh reads the rows whose cursor is at least the lower bound (the current
version's watermark less ``cursor_overlap``: the slice of the current version it covers again);
the source may send more, they are filtered here exactly. The new version is the current one's
files, carried over untouched (hard links, S3 copies), plus the rows read but those equal to a
row of the slice (each such row once, a multiset difference): a row tied at the boundary, or
read again within the overlap, is in it exactly once, and a row committed late within the
overlap is added. Append stops there: no file is rewritten. Merge also drops from the current
version every row whose primary key the rows added bring again: the files that may hold such a
key (by the manifest's ``[min, max]`` of the first primary key column) are rewritten without
them. The slice is read from the files, and row groups, whose cursor reaches the lower bound
(by the manifest's ``[min, max]`` of the cursor).

Rows whose cursor is NULL are kept as they are; only a full refresh sees them change. A full
version comes instead on the table's first refresh, when its columns changed at the source (or
its cursor is another column, or no row had a cursor value), when it is asked for, when
``full_refresh_every_seconds`` have passed since the last full one, and after a version written
before manifests existed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select

from refresh.catalog import Table, utcnow
from refresh.catalog.models import RefreshMode
from refresh.common.arrow_types import type_to_string
from refresh.common.parquet import WrittenFile, write_parquet_files
from refresh.cursors import CursorValue, from_text, has_text, is_cursor_type, lower_bound, to_text
from refresh.runtime import Runtime
from refresh.sources import Column, DiscoveredTable, Since
from refresh.sources.base import BATCH_ROWS
from refresh.storage import CacheWriteHandle, Manifest, ManifestFile
from refresh.storage.manifest import part_number
from refresh.table_settings import Settings

Reader = Callable[[Since | None], AbstractContextManager[Iterator[pa.RecordBatch]]]


@dataclass(frozen=True)
class Parent:
    """The current version an incremental refresh builds on, and its read's lower bound."""

    url: str
    manifest: Manifest
    cursor: Column
    since: CursorValue

    @property
    def watermark(self) -> CursorValue:
        assert self.manifest.watermark is not None  # no parent without one (plan_version)
        return from_text(self.manifest.watermark, self.cursor.arrow_type)

    @property
    def next_part(self) -> int:
        return 1 + max(part_number(f.name) for f in self.manifest.files)


@dataclass(frozen=True)
class Plan:
    """What a refresh will build: ``parent`` is set for append and merge. A full refresh of a
    table with a cursor still records its watermark, for the incremental ones after it."""

    mode: RefreshMode
    cursor: Column | None = None
    primary_key: tuple[str, ...] = ()
    parent: Parent | None = None


@dataclass(frozen=True)
class Built:
    manifest: Manifest
    rows_read: int


def plan_version(
    rt: Runtime, table_id: int, table: DiscoveredTable, settings: Settings, full: bool
) -> Plan:
    """How to refresh the claimed table now (see the module's docstring for when it is full)."""
    columns = {c.name: c for c in table.columns}
    cursor = columns.get(settings.cursor_column or "")
    if cursor is not None and not is_cursor_type(cursor.arrow_type):
        cursor = None
    mode = RefreshMode(settings.refresh_mode)
    # merge: the setting's key, else the source's own (a merge without either is a full refresh)
    key = (settings.primary_key or table.primary_key) if mode == RefreshMode.MERGE else ()
    whole = Plan(RefreshMode.FULL, cursor, key)
    keyless_merge = mode == RefreshMode.MERGE and not key
    if mode == RefreshMode.FULL or full or cursor is None or keyless_merge:
        return whole
    with rt.catalog.session() as session:
        url = session.scalar(select(Table.current_path).where(Table.id == table_id))
    manifest = None if url is None else rt.storage.read_manifest(url)
    if (
        url is None
        or manifest is None
        or manifest.schema != schema_json(table)
        or manifest.cursor_column != cursor.name
        or manifest.watermark is None
        or not all(name in columns for name in key)
        or _full_due(manifest, settings.full_refresh_every_seconds)
    ):
        return whole
    watermark = from_text(manifest.watermark, cursor.arrow_type)
    since = lower_bound(watermark, settings.cursor_overlap)
    return Plan(mode, cursor, key, Parent(url, manifest, cursor, since))


def _full_due(manifest: Manifest, every_seconds: int | None) -> bool:
    if every_seconds is None:
        return False
    elapsed = utcnow() - datetime.fromisoformat(manifest.full_at)
    return elapsed.total_seconds() >= every_seconds


def build_version(
    rt: Runtime, table: DiscoveredTable, plan: Plan, handle: CacheWriteHandle, read: Reader
) -> Built:
    """Write the planned version's files into ``handle`` (``read`` streams the source) and
    return its manifest, for ``finalize_cache_write``."""
    schema = table.arrow_schema()
    stats = _stats_columns(table, plan)
    parent = plan.parent
    first = 0 if parent is None else parent.next_part
    tracker = _Tracker(plan)
    if parent is not None:
        tracker.known = _slice(rt, parent)
    since = None if parent is None else Since(parent.cursor.name, parent.since)
    with read(since) as batches:
        written = write_parquet_files(
            tracker.track(batches), handle.local_dir, schema, first, stats, parent is None
        )
    files = [_manifest_file(f) for f in written]
    watermark = tracker.highest
    if parent is not None:
        kept, affected = _split(parent, plan, tracker)
        rt.storage.carry_over(handle, parent.url, [f.name for f in kept])
        rewritten = write_parquet_files(
            _rows_kept(rt, parent, affected, plan.primary_key, tracker.keys()),
            handle.local_dir,
            schema,
            first + len(written),
            stats,
            at_least_one=not kept and not written,
        )
        files = [*kept, *(_manifest_file(f) for f in rewritten), *files]
        watermark = parent.watermark if watermark is None else max(parent.watermark, watermark)
    manifest = Manifest(
        mode=plan.mode.value,
        files=tuple(files),
        schema=schema_json(table),
        full_at=parent.manifest.full_at if parent is not None else utcnow().isoformat(),
        parent_version=None if parent is None else parent.url.rsplit("/", 1)[1],
        cursor_column=plan.cursor.name if plan.cursor is not None else None,
        watermark=None if watermark is None else to_text(watermark),
    )
    return Built(manifest, tracker.rows)


def schema_json(table: DiscoveredTable) -> list[dict[str, object]]:
    """The columns as a manifest records them: what a reader of the files sees."""
    return [
        {"name": c.name, "type": type_to_string(c.arrow_type), "nullable": c.nullable}
        for c in table.columns
    ]


@dataclass
class _Tracker:
    """What the read brought: its rows (filtered exactly to the lower bound), their highest
    cursor value, and (merge) their primary keys."""

    plan: Plan
    rows: int = 0
    highest: CursorValue | None = None
    key_parts: list[pa.Table] = field(default_factory=list)
    # The rows of the slice the current version already holds, dropped once each when read again.
    known: Counter[tuple[object, ...]] = field(default_factory=Counter)

    def track(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        cursor = self.plan.cursor
        for batch in batches:
            if cursor is not None:
                values = batch.column(cursor.name)
                if self.plan.parent is not None:
                    bound = pa.scalar(self.plan.parent.since, type=cursor.arrow_type)
                    batch = batch.filter(pc.greater_equal(values, bound))
                    values = batch.column(cursor.name)
                top = pc.max(values).as_py()
                if top is not None and (self.highest is None or top > self.highest):
                    self.highest = top
            self.rows += batch.num_rows
            if self.known:
                batch = self._unknown(batch)
            if self.plan.primary_key and self.plan.parent is not None and batch.num_rows:
                self.key_parts.append(pa.Table.from_batches([batch.select(self.plan.primary_key)]))
            yield batch

    def _unknown(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch without the rows the current version holds already (append)."""
        parent = self.plan.parent
        assert parent is not None  # ``known`` is only filled for an incremental refresh
        upper = pa.scalar(parent.watermark, type=parent.cursor.arrow_type)
        inside = pc.fill_null(pc.less_equal(batch.column(parent.cursor.name), upper), False)
        positions = pc.indices_nonzero(inside).to_pylist()
        if not positions:
            return batch
        keep = [True] * batch.num_rows
        candidates = batch.take(pa.array(positions, pa.int64())).to_pylist()
        for position, row in zip(positions, candidates, strict=True):
            key = _row_key(row)
            if self.known[key] > 0:
                self.known[key] -= 1
                keep[position] = False
        return batch.filter(pa.array(keep))

    def keys(self) -> pa.Table | None:
        """The primary keys an incremental merge read, None when none."""
        if not self.key_parts:
            return None
        if len(self.key_parts) > 1:
            self.key_parts = [pa.concat_tables(self.key_parts)]
        return self.key_parts[0]


def _stats_columns(table: DiscoveredTable, plan: Plan) -> list[str]:
    """The columns whose ``[min, max]`` each file records: the cursor, the first key column."""
    names = [plan.cursor.name] if plan.cursor is not None else []
    columns = {c.name: c for c in table.columns}
    first = columns.get(plan.primary_key[0]) if plan.primary_key else None
    if first is not None and has_text(first.arrow_type) and first.name not in names:
        names.append(first.name)
    return names


def _manifest_file(written: WrittenFile) -> ManifestFile:
    return ManifestFile(
        written.name,
        written.rows,
        written.bytes,
        {
            name: [None if low is None else to_text(low), None if high is None else to_text(high)]
            for name, (low, high) in written.stats.items()
        },
    )


def _slice(rt: Runtime, parent: Parent) -> Counter[tuple[object, ...]]:
    """The rows of the current version whose cursor is at least the lower bound: those the read
    covers again. Only the row groups holding such a cursor value are read whole."""
    found: Counter[tuple[object, ...]] = Counter()
    name = parent.cursor.name
    bound = pa.scalar(parent.since, type=parent.cursor.arrow_type)
    for file in parent.manifest.files:
        if not _may_hold(file, parent.cursor, parent.since):
            continue
        with rt.storage.local_file(parent.url, file.name) as path:
            reader = pq.ParquetFile(path)
            for group in range(reader.num_row_groups):
                cursor = reader.read_row_group(group, columns=[name]).column(name)
                if not pc.any(pc.greater_equal(cursor, bound)).as_py():
                    continue
                rows = reader.read_row_group(group)
                inside = rows.filter(
                    pc.fill_null(pc.greater_equal(rows.column(name), bound), False)
                )
                found.update(_row_key(row) for row in inside.to_pylist())
    return found


def _row_key(row: dict[str, object]) -> tuple[object, ...]:
    """A row's values as a hashable key in which NaN equals NaN (as a re-read NaN must)."""
    return tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in row.values())


def _split(
    parent: Parent, plan: Plan, tracker: _Tracker
) -> tuple[list[ManifestFile], list[ManifestFile]]:
    """The parent's files to carry over as they are, and those that may hold a row whose primary
    key the read brought (merge)."""
    primary_key = plan.primary_key
    keys = tracker.keys()
    if plan.mode == RefreshMode.APPEND or not primary_key or keys is None:
        return list(parent.manifest.files), []
    bounds = pc.min_max(keys.column(primary_key[0]))
    key_type = keys.schema.field(primary_key[0]).type
    kept, affected = [], []
    for file in parent.manifest.files:
        if _overlaps(file, primary_key[0], key_type, bounds):
            affected.append(file)
        else:
            kept.append(file)
    return kept, affected


def _may_hold(file: ManifestFile, cursor: Column, since: CursorValue) -> bool:
    """Whether the file may hold a row whose cursor is at least ``since``."""
    if cursor.name not in file.stats:
        return True
    high = file.stats[cursor.name][1]
    return high is not None and from_text(high, cursor.arrow_type) >= since


def _overlaps(file: ManifestFile, column: str, arrow_type: pa.DataType, bounds: Any) -> bool:
    """Whether the file's values of ``column`` may meet ``bounds`` (a min_max of the keys)."""
    if column not in file.stats:
        return True
    low, high = file.stats[column]
    if low is None or high is None:
        return False
    lowest, highest = bounds["min"].as_py(), bounds["max"].as_py()
    return not (from_text(high, arrow_type) < lowest or from_text(low, arrow_type) > highest)


def _rows_kept(
    rt: Runtime,
    parent: Parent,
    files: Sequence[ManifestFile],
    primary_key: Sequence[str],
    keys: pa.Table | None,
) -> Iterator[pa.RecordBatch]:
    """The rows of the parent's ``files`` whose primary key the read did not bring."""
    if keys is None:
        return
    for file in files:
        with rt.storage.local_file(parent.url, file.name) as path:
            for batch in pq.ParquetFile(path).iter_batches(BATCH_ROWS):
                yield batch.filter(pc.invert(_known(batch, keys, primary_key)))


def _known(batch: pa.RecordBatch, keys: pa.Table, primary_key: Sequence[str]) -> pa.Array:
    """Which rows of ``batch`` have a primary key among ``keys``."""
    row = "\x00row"
    rows = pa.array(range(batch.num_rows), pa.int64())
    left = pa.table([*(batch.column(k) for k in primary_key), rows], names=[*primary_key, row])
    found = left.join(keys, keys=list(primary_key), join_type="left semi").column(row)
    return pc.is_in(rows, value_set=found.combine_chunks())
