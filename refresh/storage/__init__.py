"""Where versions of cached tables live: a local directory or an S3 prefix, behind one interface."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from config import ConfigError
from refresh.storage.base import (
    LEGACY_DATA_FILE,
    MAX_SEGMENT_BYTES,
    VERSION_PATTERN,
    CacheWriteHandle,
    Storage,
    StorageError,
    VersionDirectory,
    encode_identifier,
)
from refresh.storage.filesystem import FilesystemStorage, file_url_path
from refresh.storage.manifest import MANIFEST_FILE, Manifest, ManifestFile
from refresh.storage.s3 import S3Storage, S3Timeouts

__all__ = [
    "LEGACY_DATA_FILE",
    "MANIFEST_FILE",
    "MAX_SEGMENT_BYTES",
    "VERSION_PATTERN",
    "CacheWriteHandle",
    "FilesystemStorage",
    "Manifest",
    "ManifestFile",
    "S3Storage",
    "S3Timeouts",
    "Storage",
    "StorageError",
    "VersionDirectory",
    "encode_identifier",
    "open_storage",
]


def open_storage(
    cache_url: str,
    s3_endpoint_url: str | None,
    s3_timeouts: S3Timeouts = S3Timeouts(),  # noqa: B008 (frozen, so sharing it is safe)
) -> Storage:
    """The storage ``CACHE_URL`` names; a relative ``file://./dir`` is resolved here, once.

    Raises ``ConfigError`` naming the variable whose value no storage can use, so that the process
    stops at start-up with one line instead of a traceback.
    """
    root = file_url_path(cache_url)
    if root is not None:
        return FilesystemStorage(Path(root))
    parts = urlsplit(cache_url)
    if parts.scheme == "s3" and parts.netloc:
        return S3Storage(parts.netloc, parts.path, s3_endpoint_url, s3_timeouts)
    raise ConfigError(f"CACHE_URL must be file:///dir or s3://bucket/prefix, got {cache_url!r}")
