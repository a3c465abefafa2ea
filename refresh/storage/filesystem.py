"""Versions as directories on a local (or mounted) filesystem.

The caller writes its Parquet files inside the new version directory, which no reader is given
before it is published; publishing makes them durable, then writes the manifest (through a
temporary name and a rename). Files carried over from the parent version are hard links: no
bytes are copied, and deleting the parent's directory leaves them in place. URLs are real file
URLs (``Path.as_uri``): an encoded identifier's ``%`` appears as ``%25`` in them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from refresh.storage.base import CacheWriteHandle, Storage, StorageError
from refresh.storage.manifest import MANIFEST_FILE, Manifest

PARTIAL_MANIFEST = f".{MANIFEST_FILE}.partial"


def file_url_path(url: str) -> str | None:
    """The local path a ``file:`` URL names, or None for any other URL.

    A string, not a ``Path``: ``Path`` would drop ``.`` and empty segments that deletion must see
    to refuse. ``file://./var/cache`` (a host of ``.``) is the relative directory ``./var/cache``,
    the service's default.
    """
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.query or parts.fragment:
        return None
    if parts.netloc in ("", "localhost"):
        return url2pathname(parts.path)
    return url2pathname(parts.netloc + parts.path)


class FilesystemStorage(Storage):
    def __init__(self, root: Path) -> None:
        # Resolved once, so a later chdir of the process cannot move the cache.
        self._root = root.resolve()

    @property
    def root_url(self) -> str:
        return self._root.as_uri()

    def check(self) -> None:
        """Create a scratch file: only a real write shows a read-only mount or a full quota."""
        try:
            self._root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self._root):
                pass
        except OSError as error:
            raise StorageError(
                f"cache directory {self._root} is not writable: {error.strerror or error}"
            ) from error

    def abort_incomplete_uploads(self, initiated_before: datetime) -> int:
        """Nothing to do: a version is written in place, and its directory goes as a whole."""
        return 0

    def _path_below_root(self, url: str) -> str | None:
        path = file_url_path(url)
        head = os.path.join(self._root, "")
        if path is None or not path.startswith(head):
            return None
        return path[len(head) :]

    def _url(self, segments: Sequence[str]) -> str:
        return self._root.joinpath(*segments).as_uri()

    def _prepare_local(self, segments: Sequence[str]) -> Path:
        """Create the version directory, and make every directory it took durable at once.

        Only the new directories' parents need an fsync, and only now: a table refreshed before
        costs one here (its table directory) instead of one per level at every publish.
        """
        directory = self._root.joinpath(*segments)
        try:
            try:
                # exist_ok=False: a version directory belongs to exactly one writer.
                directory.mkdir()  # the table's directory exists but for its first version
                created = [directory]
            except FileNotFoundError:
                created = [path for path in [directory, *directory.parents] if not path.exists()]
                directory.mkdir(parents=True)
            for path in reversed(created):
                _fsync_directory(path.parent)
        except OSError as error:
            raise StorageError(
                f"could not create cache directory {directory}: {error.strerror or error}"
            ) from error
        return directory

    def _publish(
        self,
        handle: CacheWriteHandle,
        segments: Sequence[str],
        manifest: Manifest,
        on_progress: Callable[[], None],
    ) -> None:
        """fsync the files, write the manifest by a rename, then fsync the directory.

        Without the fsyncs a crash right after the catalog swap could lose data or the manifest,
        leaving the catalog pointing at nothing (``_prepare_local`` made the directory itself
        durable).
        """
        directory = handle.local_dir
        try:
            for file in manifest.files:
                with (directory / file.name).open("rb") as data:
                    os.fsync(data.fileno())
                on_progress()
            partial = directory / PARTIAL_MANIFEST
            with partial.open("wb") as out:
                out.write(manifest.to_json())
                out.flush()
                os.fsync(out.fileno())
            partial.replace(directory / MANIFEST_FILE)
            _fsync_directory(directory)
        except OSError as error:
            raise StorageError(f"could not publish {directory}: {error}") from error

    def _carry_over(
        self, handle: CacheWriteHandle, parent: Sequence[str], names: Sequence[str]
    ) -> None:
        source = self._root.joinpath(*parent)
        try:
            for name in names:
                os.link(source / name, handle.local_dir / name)
        except OSError as error:
            raise StorageError(
                f"could not link the files of {source} into {handle.local_dir}: "
                f"{error.strerror or error}"
            ) from error

    def _read_file(self, segments: Sequence[str]) -> bytes | None:
        path = self._root.joinpath(*segments)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StorageError(f"could not read {path}: {error.strerror or error}") from error

    @contextmanager
    def _local_file(self, segments: Sequence[str]) -> Iterator[Path]:
        yield self._root.joinpath(*segments)

    def _directories(self, depth: int) -> Iterator[list[str]]:
        """Real directories only: a symlink is not followed, so nothing outside is listed."""
        yield from self._subdirectories(str(self._root), [], depth)

    def _subdirectories(self, path: str, segments: list[str], depth: int) -> Iterator[list[str]]:
        try:
            with os.scandir(path) as entries:
                names = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:  # not created yet, or deleted meanwhile
            return
        except OSError as error:
            raise StorageError(f"could not list {path}: {error.strerror or error}") from error
        for name in names:
            if len(segments) + 1 == depth:
                yield [*segments, name]
            else:
                yield from self._subdirectories(os.path.join(path, name), [*segments, name], depth)

    def _delete_file(self, segments: Sequence[str]) -> None:
        path = self._root.joinpath(*segments)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise StorageError(f"could not delete {path}: {error.strerror or error}") from error

    def _delete_tree(self, segments: Sequence[str]) -> None:
        """Empty parent directories stay: removing them would race a writer creating a sibling."""
        path = self._root.joinpath(*segments)
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            return
        except NotADirectoryError:
            self._delete_file(segments)
        except OSError as error:
            raise StorageError(f"could not delete {path}: {error.strerror or error}") from error


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
