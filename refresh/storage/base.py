"""The storage interface both backends implement, and everything about the layout they share.

Layout: ``{root}/{connection_id}/{schema}/{table}/{version}/``, a directory of Parquet files and
their manifest (``refresh.storage.manifest``; older versions hold one ``data.parquet``, read and
deleted like the others). Identifiers come from
sources and requests, so every one is percent-encoded into a single path segment that can be
neither ``.`` nor ``..`` nor empty; no identifier can leave the root or stand for another one.
Every segment fits in ``MAX_SEGMENT_BYTES``, whatever the length of the name (see
``encode_identifier``). Backends only translate between those segments and their own paths, keys
and URLs: the checks that keep a deletion inside the root, and what counts as a version directory
when listing them, live here, once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from refresh.common.errors import RefreshError
from refresh.storage.manifest import MANIFEST_FILE, Manifest, part_name

# The one file of a version written before versions had manifests.
LEGACY_DATA_FILE = "data.parquet"
# The longest file name in a version directory.
_LONGEST_FILE = max(len(MANIFEST_FILE), len(part_name(0)), len(LEGACY_DATA_FILE))

# `YYYYMMDDTHHMMSSmmmZ-<8 hex>`: sorts by creation time as a plain string.
VERSION_PATTERN = re.compile(r"\d{8}T\d{9}Z-[0-9a-f]{8}")
VERSION_BYTES = 28
# Directories from the root down to a version: connection, schema, table, version.
LAYOUT_DEPTH = 4
# What ``encode_identifier`` can produce: unreserved characters but ".", and escapes.
_ENCODED_SEGMENT = re.compile(r"(?:[A-Za-z0-9_~-]|%[0-9A-F]{2})+")

# A file name's limit on Linux filesystems (NAME_MAX); S3 allows longer, the layout is one.
MAX_SEGMENT_BYTES = 255
# The longest path below the root: connection, schema and table segments, version, a file.
MAX_PATH_BELOW_ROOT_BYTES = 3 * (MAX_SEGMENT_BYTES + 1) + VERSION_BYTES + 1 + _LONGEST_FILE

# quote() never encodes "~", so "%7E" is in no plain encoding: a shortened segment can never
# equal the segment of another name.
_SHORTENED_MARK = "%7E"
_HASH_HEX_DIGITS = 32


class StorageError(RefreshError):
    """A storage operation failed; the message is shown to API users and holds no credentials."""


@dataclass(frozen=True)
class CacheWriteHandle:
    """One version being written: the caller writes its Parquet files into ``local_dir`` (and may
    carry files over from the parent version), then finalizes with the manifest."""

    connection_id: str
    schema_name: str
    table_name: str
    version: str
    local_dir: Path
    url: str


def encode_identifier(identifier: str) -> str:
    """Percent-encode one identifier into one path segment of at most 255 bytes, injectively.

    ``quote(safe="")`` already encodes ``/`` and ``%`` (so ``a/b`` and ``a%2Fb`` stay apart);
    encoding ``.`` as well means no result is ever ``.`` or ``..``. An encoding longer than
    ``MAX_SEGMENT_BYTES`` is shortened to its longest prefix of whole characters that fits with
    ``%7E`` and the first 32 hex digits of the name's SHA-256: still readable, still distinct.
    Shorter names keep their plain encoding, so existing caches keep their paths.
    """
    if not identifier:
        raise ValueError("an empty name cannot be part of a cache path")
    encoded = _percent_encode(identifier)
    if len(encoded) <= MAX_SEGMENT_BYTES:
        return encoded
    room = MAX_SEGMENT_BYTES - len(_SHORTENED_MARK) - _HASH_HEX_DIGITS
    prefix = ""
    for character in identifier:
        piece = _percent_encode(character)
        if len(prefix) + len(piece) > room:
            break
        prefix += piece
    digest = hashlib.sha256(identifier.encode()).hexdigest()[:_HASH_HEX_DIGITS]
    return f"{prefix}{_SHORTENED_MARK}{digest}"


def _percent_encode(text: str) -> str:
    return quote(text, safe="").replace(".", "%2E")


@dataclass(frozen=True)
class VersionDirectory:
    """A version directory found under the root (``Storage.version_directories``)."""

    url: str
    version: str
    created_at: datetime


def version_created_at(version: str) -> datetime | None:
    """When ``new_version`` made ``version`` (its name starts with that time); None for a name
    it cannot have made."""
    if not VERSION_PATTERN.fullmatch(version):
        return None
    try:
        stamp = datetime.strptime(version[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return stamp + timedelta(milliseconds=int(version[15:18]))


def _version_directory(segments: Sequence[str]) -> tuple[str, datetime] | None:
    """The version and its creation time if ``segments`` place a version where the layout does."""
    *names, version = segments
    if not all(_ENCODED_SEGMENT.fullmatch(n) and len(n) <= MAX_SEGMENT_BYTES for n in names):
        return None
    created_at = version_created_at(version)
    return None if created_at is None else (version, created_at)


class _VersionClock:
    """Milliseconds that strictly increase within a process, even within one millisecond.

    Two refreshes of one table started in the same millisecond must still get versions that sort
    in the order they were created; the random suffix only keeps processes apart.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0

    def next_ms(self) -> int:
        with self._lock:
            self._last_ms = max(time.time_ns() // 1_000_000, self._last_ms + 1)
            return self._last_ms


_clock = _VersionClock()


def new_version() -> str:
    """A version name; its time prefix lets the orphan sweep age a directory from its name."""
    seconds, millis = divmod(_clock.next_ms(), 1000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}{millis:03d}Z-{secrets.token_hex(4)}"


class Storage(ABC):
    """Versioned Parquet under one root, a local directory or an S3 prefix.

    A version is written locally, then stored by ``finalize_cache_write``, its manifest last; the
    catalog names a directory only once it is complete, so a reader that finds a version
    directory URL there always reads complete files.
    """

    @property
    @abstractmethod
    def root_url(self) -> str:
        """The URL of the cache root, without a trailing slash."""

    def prepare_cache_write(
        self, connection_id: str, schema_name: str, table_name: str
    ) -> CacheWriteHandle:
        """Reserve a new version of a table; raises ValueError for an empty identifier."""
        version = new_version()
        segments = [
            *(encode_identifier(name) for name in (connection_id, schema_name, table_name)),
            version,
        ]
        return CacheWriteHandle(
            connection_id=connection_id,
            schema_name=schema_name,
            table_name=table_name,
            version=version,
            local_dir=self._prepare_local(segments),
            url=self._url(segments),
        )

    def finalize_cache_write(
        self,
        handle: CacheWriteHandle,
        manifest: Manifest,
        on_progress: Callable[[], None] = lambda: None,
    ) -> str:
        """Store a written version with its manifest, written last, and return its directory URL
        (no ``/`` at the end).

        Every file of the manifest is in ``local_dir`` or was carried over (``carry_over``).
        ``on_progress`` is called as an upload moves on, so the caller can tell a long upload
        from a stuck one. On a StorageError the caller calls ``abort_cache_write`` so nothing is
        left behind.
        """
        if not manifest.files:
            raise StorageError(f"nothing was written to {handle.url}, nothing to publish")
        self._publish(handle, self._segments(handle.url), manifest, on_progress)
        return handle.url

    def carry_over(self, handle: CacheWriteHandle, parent_url: str, names: Sequence[str]) -> None:
        """Make the parent version's files ``names`` files of the version being written, without
        their bytes passing through the service, and so that deleting the parent keeps them."""
        if names:
            self._carry_over(handle, self._segments(parent_url), names)

    def read_manifest(self, url: str) -> Manifest | None:
        """The manifest of the version directory ``url``; None when it has none (a version
        written before manifests). Raises StorageError."""
        data = self._read_file([*self._segments(url), MANIFEST_FILE])
        return None if data is None else Manifest.from_json(data)

    def local_file(self, url: str, name: str) -> AbstractContextManager[Path]:
        """The file ``name`` of the version ``url`` as a local file while the context lasts
        (downloaded from S3 into a temporary file). Raises StorageError."""
        return self._local_file([*self._segments(url), name])

    def abort_cache_write(self, handle: CacheWriteHandle) -> None:
        """Remove everything the handle wrote, published or not.

        Raises StorageError when the version may still exist, so the caller can schedule its
        deletion instead.
        """
        self.delete_prefix(handle.url)

    def delete(self, url: str) -> None:
        """Delete one file; nothing there is success. Refuses a URL outside the root."""
        self._delete_file(self._segments(url))

    def delete_prefix(self, url: str) -> None:
        """Delete a directory (or a file) with all it holds, by whole path segments.

        That includes uploads still open under it (S3), so a deletion retried after a failed
        upload also removes what the upload left. Nothing there is success. Refuses a URL outside
        the root, and the root itself.
        """
        self._delete_tree(self._segments(url))

    def version_directories(self) -> Iterator[VersionDirectory]:
        """Every version directory under the root, for the orphan sweep.

        Only what the layout places: a directory named like a version, three encoded names below
        the root. A stray file, a directory at another depth or under another name is not one,
        so nothing else under the root is ever reported for deletion. Raises StorageError.
        """
        for segments in self._directories(LAYOUT_DEPTH):
            found = _version_directory(segments)
            if found is not None:
                yield VersionDirectory(self._url(segments), *found)

    @abstractmethod
    def check(self) -> None:
        """Raise StorageError when the storage cannot be used (GET /health)."""

    @abstractmethod
    def abort_incomplete_uploads(self, initiated_before: datetime) -> int:
        """Abort the uploads under the root begun before ``initiated_before`` (aware); how many.

        For the orphan sweep: an upload cut off while its store was unreachable, or by a killed
        process, keeps its parts (stored and billed) but holds no object, so no deletion finds
        it. Raises StorageError.
        """

    def _segments(self, url: str) -> list[str]:
        """The path segments of ``url`` below the root, or StorageError when it is not below it.

        Dot and empty segments are refused rather than normalised: our encoding never makes
        them, a filesystem would resolve them outside the root, and S3 servers disagree on them.
        """
        relative = self._path_below_root(url)
        segments = [] if relative is None else relative.split("/")
        if not segments or any(s in ("", ".", "..") or "\x00" in s for s in segments):
            raise StorageError(f"{url} is not inside the cache root {self.root_url}")
        return segments

    @abstractmethod
    def _path_below_root(self, url: str) -> str | None:
        """The ``/``-separated path of ``url`` below the root, None when not under the root."""

    @abstractmethod
    def _url(self, segments: Sequence[str]) -> str:
        """The URL of the path made of ``segments`` below the root."""

    @abstractmethod
    def _prepare_local(self, segments: Sequence[str]) -> Path:
        """Make room for the version at ``segments`` and return the local directory to write."""

    @abstractmethod
    def _publish(
        self,
        handle: CacheWriteHandle,
        segments: Sequence[str],
        manifest: Manifest,
        on_progress: Callable[[], None],
    ) -> None:
        """Store the written files durably, then the manifest."""

    @abstractmethod
    def _carry_over(
        self, handle: CacheWriteHandle, parent: Sequence[str], names: Sequence[str]
    ) -> None: ...

    @abstractmethod
    def _read_file(self, segments: Sequence[str]) -> bytes | None:
        """The file's content; None when there is none."""

    @abstractmethod
    def _local_file(self, segments: Sequence[str]) -> AbstractContextManager[Path]: ...

    @abstractmethod
    def _directories(self, depth: int) -> Iterator[list[str]]:
        """The segments of each directory ``depth`` levels below the root (on S3: of each prefix
        with keys below it), each once. Raises StorageError."""

    @abstractmethod
    def _delete_file(self, segments: Sequence[str]) -> None: ...

    @abstractmethod
    def _delete_tree(self, segments: Sequence[str]) -> None: ...
