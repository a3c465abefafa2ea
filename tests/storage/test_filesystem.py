"""What only FilesystemStorage has: the partial file, file URLs, and a relative root."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from refresh.storage import (
    LEGACY_DATA_FILE,
    MANIFEST_FILE,
    FilesystemStorage,
    StorageError,
    open_storage,
)
from tests.support.stored_versions import FIRST, finalize, publish, sample, write


def test_a_version_directory_has_its_manifest_only_once_published(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)
    handle = write(storage, sample())
    directory = handle.local_dir

    assert [p.name for p in directory.iterdir()] == [FIRST]

    finalize(storage, handle)

    assert sorted(p.name for p in directory.iterdir()) == [MANIFEST_FILE, FIRST]


def test_carried_files_are_hard_links_that_outlive_the_parent(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)
    parent = publish(storage, sample("parent"))
    handle = storage.prepare_cache_write("conn", "public", "orders")

    storage.carry_over(handle, parent, [FIRST])
    child = finalize(storage, handle)
    storage.delete_prefix(parent)

    assert (handle.local_dir / FIRST).stat().st_nlink == 1
    assert pq.read_table(handle.local_dir / FIRST).equals(sample("parent"))
    assert storage.read_manifest(child) is not None


def test_urls_are_file_urls_of_the_encoded_directories(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)

    url = publish(storage, sample(), "a%b", "x y", "é")

    directory = next(tmp_path.glob(f"a%25b/x%20y/%C3%A9/*/{FIRST}")).parent
    assert url == directory.as_uri()
    assert "/a%2525b/x%2520y/%25C3%25A9/" in url
    storage.delete_prefix(url)
    assert not directory.exists()


def test_relative_root_is_resolved_against_the_working_directory_at_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = open_storage("file://./var/cache", None)
    monkeypatch.chdir(tmp_path.parent)

    url = publish(storage, sample())

    assert storage.root_url == (tmp_path / "var" / "cache").as_uri()
    assert url.startswith(f"{storage.root_url}/conn/public/orders/")
    assert (tmp_path / "var" / "cache" / "conn" / "public" / "orders").is_dir()


def test_delete_refuses_a_directory(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)
    url = publish(storage, sample())

    with pytest.raises(StorageError, match="could not delete"):
        storage.delete(url)


def test_version_directories_do_not_follow_symlinks(tmp_path: Path) -> None:
    version = "20200101T000000000Z-0000abcd"
    outside = tmp_path / "outside" / "s" / "t" / version
    outside.mkdir(parents=True)
    (outside / LEGACY_DATA_FILE).write_bytes(b"not ours")
    table = tmp_path / "cache" / "c" / "s" / "t"
    table.mkdir(parents=True)
    (table / version).symlink_to(outside, target_is_directory=True)
    (tmp_path / "cache" / "l").symlink_to(tmp_path / "outside", target_is_directory=True)

    assert list(FilesystemStorage(tmp_path / "cache").version_directories()) == []
