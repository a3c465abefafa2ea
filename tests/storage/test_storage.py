"""The behaviour both storages share (guarantees 1, 2 and 5 of docs/api.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest

from config import ConfigError
from refresh.storage import (
    LEGACY_DATA_FILE,
    MANIFEST_FILE,
    MAX_SEGMENT_BYTES,
    VERSION_PATTERN,
    StorageError,
    encode_identifier,
    open_storage,
)
from tests.support.backends import ROOT, Backend, version_files
from tests.support.stored_versions import FIRST, finalize, manifest, publish, sample, write

IDENTIFIERS = ["../x", "a/b", "a%2Fb", "..", ".", "x y", 'we"ird', "é", "中文"]
# Names whose encodings exceed a file name's 255 bytes; the first two differ in their last byte.
LONG_NAMES = ["x" * 300, "x" * 299 + "y", "é" * 100, "中" * 300, "a." * 200, "x" * 256]


def parent(url: str) -> str:
    return url.rsplit("/", 1)[0]


def test_published_version_reads_back_from_its_directory_url(backend: Backend) -> None:
    table = sample()
    handle = write(backend.storage, table)

    written = manifest(handle)
    url = backend.storage.finalize_cache_write(handle, written)

    assert url == handle.url
    assert url.startswith(f"{backend.storage.root_url}/")
    assert url.endswith(f"/{handle.version}")
    assert not url.endswith((".parquet", "/"))
    assert backend.read(url).equals(table)
    assert backend.files() == version_files(f"conn/public/orders/{handle.version}")
    assert backend.storage.read_manifest(url) == written


def test_versions_are_unique_and_sort_by_creation(backend: Backend) -> None:
    handles = [backend.storage.prepare_cache_write("c", "s", "t") for _ in range(30)]
    versions = [handle.version for handle in handles]

    assert all(VERSION_PATTERN.fullmatch(version) for version in versions)
    assert versions == sorted(set(versions))
    for handle in handles:
        backend.storage.abort_cache_write(handle)
    assert backend.files() == set()


def test_two_writes_of_one_table_give_two_directories(backend: Backend) -> None:
    first = publish(backend.storage, sample("first"))
    second = publish(backend.storage, sample("second"))

    assert first != second
    assert parent(first) == parent(second)
    assert backend.read(first).equals(sample("first"))
    assert backend.read(second).equals(sample("second"))
    assert len(backend.files()) == 4


def test_delete_removes_one_file(backend: Backend) -> None:
    gone = publish(backend.storage, sample(), "c", "s", "gone")
    kept = publish(backend.storage, sample(), "c", "s", "kept")

    backend.storage.delete(f"{gone}/{FIRST}")
    backend.storage.delete(f"{gone}/{MANIFEST_FILE}")

    assert backend.files() == version_files(f"c/s/kept/{kept.rsplit('/', 1)[1]}")


def test_delete_prefix_removes_whole_segments_only(backend: Backend) -> None:
    abc_old = publish(backend.storage, sample(), "c", "s", "abc")
    abc_new = publish(backend.storage, sample(), "c", "s", "abc")
    abcd = publish(backend.storage, sample(), "c", "s", "abcd")

    backend.storage.delete_prefix(abc_old)
    assert {name.split("/")[3] for name in backend.files()} == {
        abc_new.rsplit("/", 1)[1],
        abcd.rsplit("/", 1)[1],
    }

    backend.storage.delete_prefix(parent(abc_new))
    assert {name.split("/")[2] for name in backend.files()} == {"abcd"}
    assert backend.read(abcd).equals(sample())


@pytest.mark.parametrize(
    "suffix", ["nobody", f"nobody/s/t/20260101T000000000Z-00000000/{LEGACY_DATA_FILE}"]
)
def test_delete_and_delete_prefix_succeed_when_nothing_is_there(
    backend: Backend, suffix: str
) -> None:
    url = f"{backend.storage.root_url}/{suffix}"
    backend.storage.delete(url)
    backend.storage.delete_prefix(url)


def test_urls_outside_the_root_are_refused(backend: Backend) -> None:
    root = backend.storage.root_url
    planted = {backend.plant(f"{ROOT}2/x"), backend.plant(f"outside/{LEGACY_DATA_FILE}")}
    inside = publish(backend.storage, sample())
    outside = [
        *planted,
        root,
        f"{root}/",
        f"{root}2/x",
        f"{root}/../outside/{LEGACY_DATA_FILE}",
        f"{root}/a/../../outside",
        f"{root}/./a",
        f"{root}/a//b",
        f"{inside}/",
        "s3://another-bucket/cache/x",
        "file:///cache/x",
        "http://127.0.0.1/cache/x",
    ]
    before = backend.everything()

    for url in outside:
        with pytest.raises(StorageError, match="is not inside the cache root"):
            backend.storage.delete(url)
        with pytest.raises(StorageError, match="is not inside the cache root"):
            backend.storage.delete_prefix(url)

    assert backend.everything() == before


def test_abort_before_finalize_removes_the_partial_write(backend: Backend) -> None:
    handle = write(backend.storage, sample())

    backend.storage.abort_cache_write(handle)

    assert backend.files() == set()


def test_abort_after_finalize_removes_the_version(backend: Backend) -> None:
    kept = publish(backend.storage, sample())
    handle = write(backend.storage, sample())
    finalize(backend.storage, handle)

    backend.storage.abort_cache_write(handle)

    assert backend.files() == version_files(f"conn/public/orders/{kept.rsplit('/', 1)[1]}")


def test_finalize_without_a_written_file_is_refused(backend: Backend) -> None:
    handle = backend.storage.prepare_cache_write("c", "s", "t")

    with pytest.raises(StorageError, match="nothing was written"):
        finalize(backend.storage, handle)

    backend.storage.abort_cache_write(handle)
    assert backend.files() == set()


def test_identifiers_never_escape_the_root_nor_collide(backend: Backend) -> None:
    urls = {name: publish(backend.storage, sample(name), name, name, name) for name in IDENTIFIERS}

    files = {f for f in backend.files() if f.endswith(FIRST)}
    assert len(files) == len(IDENTIFIERS)
    assert all(name.startswith(f"{ROOT}/") for name in backend.everything())
    for path in files:
        connection, schema, table, version, data = path.split("/")
        assert connection == schema == table
        assert unquote(connection) in IDENTIFIERS
        assert connection not in ("", ".", "..")
        assert VERSION_PATTERN.fullmatch(version)
        assert data == FIRST
    for name, url in urls.items():
        assert backend.read(url).equals(sample(name))


def test_names_of_any_length_publish_into_bounded_distinct_segments(backend: Backend) -> None:
    urls = {
        name: publish(backend.storage, sample(name[-3:]), name, name, name) for name in LONG_NAMES
    }

    files = backend.files()
    assert len(files) == 2 * len(LONG_NAMES)
    for path in files:
        connection, schema, table, _, _ = path.split("/")
        assert connection == schema == table
        assert len(table.encode()) <= MAX_SEGMENT_BYTES
    for name, url in urls.items():
        assert backend.read(url).equals(sample(name[-3:]))
        backend.storage.delete_prefix(url)
    assert backend.files() == set()


@pytest.mark.parametrize("position", [0, 1, 2])
def test_empty_identifier_is_rejected(backend: Backend, position: int) -> None:
    names = ["c", "s", "t"]
    names[position] = ""

    with pytest.raises(ValueError, match="empty"):
        backend.storage.prepare_cache_write(*names)

    assert backend.files() == set()


def test_aborting_incomplete_uploads_spares_published_versions(backend: Backend) -> None:
    url = publish(backend.storage, sample())

    assert backend.storage.abort_incomplete_uploads(datetime.now(UTC) + timedelta(hours=1)) == 0

    assert backend.read(url).equals(sample())


OLD_VERSION = "20200101T000000000Z-0000abcd"


def test_version_directories_are_what_the_layout_places(backend: Backend) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    names = [("c", "s", "t"), ("c", "s", "t"), ("a/b", "é", "x" * 300)]
    expected = {publish(backend.storage, sample(), *n) for n in names}
    expected.add(parent(backend.plant(f"{ROOT}/c/s/t/{OLD_VERSION}/{LEGACY_DATA_FILE}")))
    for stray in [
        f"{ROOT}/stray.txt",
        f"{ROOT}/c/s/t/not-a-version/{LEGACY_DATA_FILE}",
        f"{ROOT}/c/s/t/20200101T000000000Z-0000beef",  # a file named like a version
        f"{ROOT}/c/s/t/{OLD_VERSION}x/{LEGACY_DATA_FILE}",
        f"{ROOT}/c/s/t/20201301T000000000Z-0000abcd/{LEGACY_DATA_FILE}",  # month 13
        f"{ROOT}/c/s/{OLD_VERSION}/{LEGACY_DATA_FILE}",  # a version's name, not a version's depth
        f"{ROOT}/c/s/t/u/{OLD_VERSION}/{LEGACY_DATA_FILE}",
        f"{ROOT}/c/s.s/t/{OLD_VERSION}/{LEGACY_DATA_FILE}",  # a name the encoding never makes
        f"{ROOT}2/c/s/t/{OLD_VERSION}/{LEGACY_DATA_FILE}",  # beside the root
    ]:
        backend.plant(stray)

    found = {d.url: d for d in backend.storage.version_directories()}

    assert set(found) == expected
    for url, directory in found.items():
        assert url.endswith(f"/{directory.version}")
        if directory.version == OLD_VERSION:
            assert directory.created_at == datetime(2020, 1, 1, tzinfo=UTC)
        else:
            assert before <= directory.created_at <= datetime.now(UTC)


def test_an_empty_or_missing_root_has_no_version_directories(backend: Backend) -> None:
    assert list(backend.storage.version_directories()) == []


def test_check_passes_on_a_usable_storage(backend: Backend) -> None:
    backend.storage.check()


def test_unusable_storage_fails_check_and_writes(backend: Backend) -> None:
    broken = backend.unusable()

    with pytest.raises(StorageError):
        broken.check()
    with pytest.raises(StorageError):
        publish(broken, sample())


@pytest.mark.parametrize(
    ("identifier", "segment"),
    [
        ("orders", "orders"),
        ("a/b", "a%2Fb"),
        ("a%2Fb", "a%252Fb"),
        (".", "%2E"),
        ("..", "%2E%2E"),
        ("../x", "%2E%2E%2Fx"),
        ("v1.2", "v1%2E2"),
        ("é", "%C3%A9"),
    ],
)
def test_identifier_encoding(identifier: str, segment: str) -> None:
    assert encode_identifier(identifier) == segment
    assert unquote(segment) == identifier


def test_the_longest_plain_segment_is_kept_as_it_is() -> None:
    assert encode_identifier("x" * 255) == "x" * 255
    assert encode_identifier("é" * 42) == "%C3%A9" * 42  # 252 bytes


def test_longer_names_keep_a_readable_prefix_and_a_hash_of_the_whole_name() -> None:
    segments = {name: encode_identifier(name) for name in LONG_NAMES}

    assert len(set(segments.values())) == len(LONG_NAMES)
    for name, segment in segments.items():
        assert len(segment.encode()) <= MAX_SEGMENT_BYTES
        head, digest = segment.split("%7E")
        assert len(head) > 200
        assert name.startswith(unquote(head))  # whole characters, readable once decoded
        assert re.fullmatch(r"[0-9a-f]{32}", digest)
        # Not even the name that reads like the shortened segment gets it ("~" is never encoded).
        assert encode_identifier(unquote(segment)) != segment


def test_open_storage_refuses_other_schemes() -> None:
    with pytest.raises(ConfigError, match=r"^CACHE_URL must be file:///dir or s3://bucket/prefix"):
        open_storage("ftp://example/cache", None)
