"""Versions of one small Parquet file stored straight through a storage, for the storage suite."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from refresh.storage import CacheWriteHandle, Manifest, ManifestFile, Storage
from refresh.storage.manifest import part_name

FIRST = part_name(0)


def sample(label: str = "x") -> pa.Table:
    return pa.table(
        {
            "id": pa.array([1, 2, None], pa.int64()),
            "label": pa.array([label, None, f"{label}!"], pa.string()),
        }
    )


def write(storage: Storage, table: pa.Table, *names: str) -> CacheWriteHandle:
    """A version of one file written, not stored yet."""
    handle = storage.prepare_cache_write(*(names or ("conn", "public", "orders")))
    pq.write_table(table, handle.local_dir / FIRST, compression="zstd")
    return handle


def manifest(handle: CacheWriteHandle) -> Manifest:
    """The manifest of the files written into ``handle``."""
    files = sorted(p for p in handle.local_dir.iterdir() if p.suffix == ".parquet")
    return Manifest(
        mode="full",
        files=tuple(ManifestFile(p.name, 0, p.stat().st_size) for p in files),
        schema=[],
        full_at="2026-12-05T00:00:00+00:00",
    )


def finalize(storage: Storage, handle: CacheWriteHandle) -> str:
    return storage.finalize_cache_write(handle, manifest(handle))


def publish(storage: Storage, table: pa.Table, *names: str) -> str:
    return finalize(storage, write(storage, table, *names))
