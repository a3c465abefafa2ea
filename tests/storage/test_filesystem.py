"""What only FilesystemStorage has: the partial file, file URLs, and a relative root."""

from __future__ import annotations

from pathlib import Path

import pytest

from refresh.storage import DATA_FILE, FilesystemStorage, StorageError, open_storage
from tests.storage.test_storage import publish, sample, write


def test_a_version_directory_never_shows_a_partial_data_file(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)
    handle = write(storage, sample())
    directory = handle.local_path.parent

    assert handle.local_path.name == f".{DATA_FILE}.partial"
    assert [p.name for p in directory.iterdir()] == [handle.local_path.name]

    storage.finalize_cache_write(handle)

    assert [p.name for p in directory.iterdir()] == [DATA_FILE]


def test_urls_are_file_urls_of_the_encoded_directories(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)

    url = publish(storage, sample(), "a%b", "x y", "é")

    directory = next(tmp_path.glob(f"a%25b/x%20y/%C3%A9/*/{DATA_FILE}")).parent
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
    (outside / DATA_FILE).write_bytes(b"not ours")
    table = tmp_path / "cache" / "c" / "s" / "t"
    table.mkdir(parents=True)
    (table / version).symlink_to(outside, target_is_directory=True)
    (tmp_path / "cache" / "l").symlink_to(tmp_path / "outside", target_is_directory=True)

    assert list(FilesystemStorage(tmp_path / "cache").version_directories()) == []
