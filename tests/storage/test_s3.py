"""What only S3Storage has: a temporary local file, multipart uploads, paginated deletes, keys."""

from __future__ import annotations

import os
from datetime import timedelta

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from boto3.s3.transfer import TransferConfig

from config import ConfigError
from refresh.storage import MANIFEST_FILE, S3Storage, StorageError, open_storage, s3
from tests.support.backends import S3Backend, version_files
from tests.support.proxy import pausable_proxy
from tests.support.seaweedfs import HOST, S3_PORT, SeaweedFS
from tests.support.stored_versions import FIRST, finalize, publish, sample, write

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_backend(s3_server: SeaweedFS) -> S3Backend:
    return S3Backend(s3_server)


def test_temporary_directory_is_removed_once_published(s3_backend: S3Backend) -> None:
    handle = write(s3_backend.storage, sample())
    assert handle.local_dir.name.startswith("refresh-")

    finalize(s3_backend.storage, handle)

    assert not handle.local_dir.exists()


def test_temporary_directory_is_removed_when_the_upload_fails(s3_backend: S3Backend) -> None:
    broken = s3_backend.unusable()
    handle = write(broken, sample())

    with pytest.raises(StorageError, match=rf"^S3 upload to s3://.*/{FIRST} failed: .*NoSuch"):
        finalize(broken, handle)

    assert not handle.local_dir.exists()


PART = 5 * 1024 * 1024  # the smallest part S3 accepts


def test_delete_prefix_aborts_the_upload_a_dead_server_left_open(
    s3_backend: S3Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        S3Storage,
        "transfer_config",
        TransferConfig(multipart_threshold=PART, multipart_chunksize=PART),
    )
    with pausable_proxy(HOST, S3_PORT) as proxy:
        # The store dies once it has taken a part: the upload cannot even be aborted.
        dying = open_storage(s3_backend.storage.root_url, f"http://{HOST}:{proxy.port}")
        dying._client.meta.events.register("after-call.s3.UploadPart", lambda **_: proxy.close())
        handle = dying.prepare_cache_write("c", "s", "t")
        (handle.local_dir / FIRST).write_bytes(os.urandom(3 * PART))

        with pytest.raises(StorageError, match="S3 upload to"):
            finalize(dying, handle)
        with pytest.raises(StorageError):
            dying.abort_cache_write(handle)  # the caller queues the directory for deletion

    assert s3_backend.open_uploads() == {f"cache/c/s/t/{handle.version}/{FIRST}"}
    s3_backend.storage.delete_prefix(handle.url)  # the queued deletion, once the store is back
    assert s3_backend.open_uploads() == set()
    assert s3_backend.everything() == set()


def test_abort_incomplete_uploads_takes_those_under_the_root_begun_before_the_cutoff(
    s3_backend: S3Backend,
) -> None:
    client, bucket = s3_backend.client, s3_backend.bucket
    keys = {f"cache/c/s/t/v/{FIRST}", "cache2/x", "other/cache/y"}
    for key in keys:
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"p")
    started = [u["Initiated"] for u in client.list_multipart_uploads(Bucket=bucket)["Uploads"]]
    published = publish(s3_backend.storage, sample())

    assert s3_backend.storage.abort_incomplete_uploads(initiated_before=min(started)) == 0
    assert s3_backend.open_uploads() == keys
    cutoff = max(started) + timedelta(seconds=1)
    assert s3_backend.storage.abort_incomplete_uploads(initiated_before=cutoff) == 1
    assert s3_backend.open_uploads() == {"cache2/x", "other/cache/y"}
    assert s3_backend.read(published).equals(sample())


def test_big_file_goes_up_in_parts(s3_backend: S3Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        S3Storage,
        "transfer_config",
        TransferConfig(multipart_threshold=PART, multipart_chunksize=PART),
    )
    table = pa.table({"blob": [os.urandom(1024 * 1024) for _ in range(6)]})
    handle = s3_backend.storage.prepare_cache_write("c", "s", "big")
    pq.write_table(table, handle.local_dir / FIRST, compression="none")

    url = finalize(s3_backend.storage, handle)

    key = f"cache/c/s/big/{handle.version}/{FIRST}"
    etag = s3_backend.client.head_object(Bucket=s3_backend.bucket, Key=key)["ETag"]
    assert etag.strip('"').endswith("-2")  # a multipart upload's ETag counts its parts
    assert s3_backend.read(url).equals(table)


@pytest.mark.parametrize("parts", [4, 5])  # the last page full, or with room for the exact key
def test_delete_prefix_deletes_page_by_page(
    s3_backend: S3Backend, monkeypatch: pytest.MonkeyPatch, parts: int
) -> None:
    monkeypatch.setattr(s3, "DELETE_BATCH", 2)
    for n in range(parts):
        s3_backend.plant(f"cache/c/s/t/v/part-{n}")
    s3_backend.plant("cache/c/s/t/v")
    s3_backend.plant("cache/c/s/t/vv/part-0")

    s3_backend.storage.delete_prefix(f"{s3_backend.storage.root_url}/c/s/t/v")

    assert s3_backend.files() == {"c/s/t/vv/part-0"}


def test_keys_hold_the_encoded_identifiers_literally(s3_backend: S3Backend) -> None:
    url = publish(s3_backend.storage, sample(), "a/b", "%", "中文")

    assert url.startswith(f"s3://{s3_backend.bucket}/cache/a%2Fb/%25/%E4%B8%AD%E6%96%87/")
    assert s3_backend.files() == version_files(url.split("/cache/", 1)[1])


def test_the_longest_names_under_the_longest_prefix_fit_in_a_key(
    s3_backend: S3Backend, s3_server: SeaweedFS
) -> None:
    root = f"s3://{s3_backend.bucket}/{'p' * s3.MAX_PREFIX_BYTES}"
    storage = open_storage(root, s3_server.endpoint_url)

    url = publish(storage, sample(), *(["x" * 1000] * 3))

    keys = s3_backend.everything()
    assert {k.rsplit("/", 1)[1] for k in keys} == {FIRST, MANIFEST_FILE}
    assert max(len(k.encode()) for k in keys) == s3.MAX_KEY_BYTES == 1024
    assert s3_backend.read(url).equals(sample())
    with pytest.raises(ConfigError, match=r"^CACHE_URL: .* at most 208 bytes"):
        open_storage(f"{root}p", s3_server.endpoint_url)


def test_bucket_root_without_prefix(s3_backend: S3Backend, s3_server: SeaweedFS) -> None:
    storage = open_storage(f"s3://{s3_backend.bucket}", s3_server.endpoint_url)
    assert storage.root_url == f"s3://{s3_backend.bucket}"

    url = publish(storage, sample())
    assert url.startswith(f"s3://{s3_backend.bucket}/conn/public/orders/")
    with pytest.raises(StorageError, match="not inside the cache root"):
        storage.delete_prefix(f"s3://{s3_backend.bucket}")

    storage.delete_prefix(url)
    assert s3_backend.everything() == set()


@pytest.mark.parametrize("wrong", ["secret", "key"])
def test_errors_never_show_the_credentials(
    s3_backend: S3Backend, monkeypatch: pytest.MonkeyPatch, wrong: str
) -> None:
    key_id, secret = "AKIDWRONGKEYID12345", "wrong-secret-0123456789abcdef"
    # boto3's default session keeps the credentials it first found; start from a new one.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    if wrong == "key":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    storage = open_storage(s3_backend.storage.root_url, s3_backend.server.endpoint_url)

    with pytest.raises(StorageError) as failure:
        storage.check()
    with pytest.raises(StorageError) as upload_failure:
        publish(storage, sample())

    for message in (str(failure.value), str(upload_failure.value)):
        assert "SignatureDoesNotMatch" in message or "InvalidAccessKeyId" in message
        assert secret not in message
        assert key_id not in message
        assert os.environ["AWS_ACCESS_KEY_ID"] not in message


def test_check_fails_when_the_endpoint_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "any")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "any")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    storage = open_storage("s3://bucket/cache", "http://127.0.0.1:1")

    with pytest.raises(StorageError, match=r"^S3 access to s3://bucket/cache failed: Could not"):
        storage.check()


def test_fixture_buckets_are_fresh_and_usable(s3_server: SeaweedFS) -> None:
    first, second = s3_server.create_bucket(), s3_server.create_bucket()
    client = s3_server.client()

    assert first != second
    for bucket in (first, second):
        assert 3 <= len(bucket) <= 63
        assert bucket == bucket.lower()
        assert client.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    client.put_object(Bucket=first, Key="a/b", Body=b"round trip")
    assert client.get_object(Bucket=first, Key="a/b")["Body"].read() == b"round trip"
    assert client.list_objects_v2(Bucket=second)["KeyCount"] == 0
