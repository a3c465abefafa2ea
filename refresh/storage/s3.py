"""Versions as key prefixes in an S3 bucket (AWS or an S3-compatible server such as SeaweedFS).

The caller writes into a local temporary directory; publishing uploads its files (multipart when
big) under ``.../{version}/``, then the manifest. Files carried over from the parent version are
server-side copies (CopyObject): no bytes pass through the service, and deleting the parent's keys
leaves the copies. An S3 object only becomes visible once its upload has completed, so readers
never see a partial file. Keys hold the percent-encoded identifiers literally, and so
do the ``s3://`` URLs: readers must not percent-decode them.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import boto3
from boto3.exceptions import Boto3Error, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

from config import ConfigError
from refresh.storage.base import (
    MAX_PATH_BELOW_ROOT_BYTES,
    CacheWriteHandle,
    Storage,
    StorageError,
)
from refresh.storage.manifest import MANIFEST_FILE, Manifest

logger = logging.getLogger(__name__)

_MiB = 1024 * 1024

# DeleteObjects takes at most 1000 keys, and a ListObjectsV2 page holds at most 1000.
DELETE_BATCH = 1000
# Server-side copies of a version's files in flight at once (boto3's pool keeps 10 connections).
COPY_CONCURRENCY = 8

MAX_KEY_BYTES = 1024
# "{prefix}/{path below the root}" must fit in a key whatever the names.
MAX_PREFIX_BYTES = MAX_KEY_BYTES - 1 - MAX_PATH_BELOW_ROOT_BYTES

_S3_ERRORS = (BotoCoreError, ClientError, Boto3Error)


@dataclass(frozen=True)
class S3Timeouts:
    """How long any S3 call may wait: a frozen endpoint fails a refresh instead of hanging it.

    ``read`` bounds each wait for the server's answer (a 64 MiB part's included); ``attempts``
    counts the first try and boto3's retries.
    """

    connect: float = 5
    read: float = 60
    attempts: int = 3


# A file up to this size goes up in one PutObject of the storage's own: ``upload_file`` sends
# the same single request for it, but starts (and stops) a pool of threads to do so, which cost
# a table of 1,000 rows as much time as the request itself (bench/README.md). One request this
# small ends long before a stall timeout could mistake it for an upload that stopped moving.
SINGLE_PUT_BYTES = 1 * _MiB


class S3Storage(Storage):
    # 64 MiB parts allow objects up to 640 GiB (S3's 10,000 parts); the upload streams from the
    # file, so the part size does not set the memory an upload takes.
    transfer_config: ClassVar[TransferConfig] = TransferConfig(
        multipart_threshold=64 * _MiB, multipart_chunksize=64 * _MiB, max_concurrency=4
    )

    def __init__(
        self,
        bucket: str,
        prefix: str,
        endpoint_url: str | None = None,
        timeouts: S3Timeouts = S3Timeouts(),
    ) -> None:
        """Raises ``ConfigError`` for a prefix (``CACHE_URL``) or an endpoint
        (``S3_ENDPOINT_URL``) the storage cannot work with."""
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        if len(self._prefix.encode()) > MAX_PREFIX_BYTES:
            raise ConfigError(
                f"CACHE_URL: the prefix of an s3:// cache URL is at most {MAX_PREFIX_BYTES} bytes, "
                f"so that every key fits in S3's {MAX_KEY_BYTES}; got {len(self._prefix.encode())}"
            )
        if endpoint_url is not None and not _valid_endpoint(endpoint_url):
            raise ConfigError(f"S3_ENDPOINT_URL is not a valid endpoint URL: {endpoint_url!r}")
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(
                connect_timeout=timeouts.connect,
                read_timeout=timeouts.read,
                retries={"mode": "standard", "max_attempts": timeouts.attempts},
            ),
        )

    @property
    def root_url(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}" if self._prefix else f"s3://{self._bucket}"

    def check(self) -> None:
        """List one key: proves endpoint, credentials and bucket without writing on every probe."""
        try:
            self._client.list_objects_v2(
                Bucket=self._bucket, Prefix=f"{self._prefix}/" if self._prefix else "", MaxKeys=1
            )
        except _S3_ERRORS as error:
            raise _storage_error("access to", self.root_url, error) from error

    def abort_incomplete_uploads(self, initiated_before: datetime) -> int:
        return self._abort_uploads(self._prefix, self.root_url, initiated_before)

    def abort_cache_write(self, handle: CacheWriteHandle) -> None:
        _remove_temp_dir(handle.local_dir)
        super().abort_cache_write(handle)

    def _path_below_root(self, url: str) -> str | None:
        head = f"{self.root_url}/"
        return url[len(head) :] if url.startswith(head) else None

    def _url(self, segments: Sequence[str]) -> str:
        return "/".join([self.root_url, *segments])

    def _key(self, segments: Sequence[str]) -> str:
        return "/".join([self._prefix, *segments] if self._prefix else segments)

    def _prepare_local(self, segments: Sequence[str]) -> Path:
        try:
            return Path(tempfile.mkdtemp(prefix="refresh-"))
        except OSError as error:
            raise StorageError(f"could not create a temporary directory: {error}") from error

    def _publish(
        self,
        handle: CacheWriteHandle,
        segments: Sequence[str],
        manifest: Manifest,
        on_progress: Callable[[], None],
    ) -> None:
        """Upload the local files, then the manifest; drop the local copies whatever happened:
        a retry rereads the source."""
        try:
            for file in manifest.files:
                path = handle.local_dir / file.name
                if not path.exists():
                    continue  # carried over: already there
                try:
                    self._upload(path, self._key([*segments, file.name]), on_progress)
                except _S3_ERRORS as error:
                    raise _storage_error("upload to", f"{handle.url}/{file.name}", error) from error
            try:
                self._client.put_object(
                    Bucket=self._bucket,
                    Key=self._key([*segments, MANIFEST_FILE]),
                    Body=manifest.to_json(),
                )
            except _S3_ERRORS as error:
                url = f"{handle.url}/{MANIFEST_FILE}"
                raise _storage_error("upload to", url, error) from error
        finally:
            _remove_temp_dir(handle.local_dir)

    def _upload(self, path: Path, key: str, on_progress: Callable[[], None]) -> None:
        """Upload a file: in one request when it is small (progress reported once it is up), else
        in parts (``transfer_config``), reporting progress as they go."""
        if path.stat().st_size <= min(SINGLE_PUT_BYTES, self.transfer_config.multipart_threshold):
            with path.open("rb") as body:
                self._client.put_object(Bucket=self._bucket, Key=key, Body=body)
        else:
            self._client.upload_file(
                str(path),
                self._bucket,
                key,
                Config=self.transfer_config,
                Callback=lambda _bytes: on_progress(),
            )
        on_progress()

    def _carry_over(
        self, handle: CacheWriteHandle, parent: Sequence[str], names: Sequence[str]
    ) -> None:
        """Server-side copies, a few at once: each costs the server about what its bytes cost,
        one after the other a table of many files would wait for the sum."""
        segments = self._segments(handle.url)

        def copy(name: str) -> None:
            try:
                self._client.copy_object(
                    Bucket=self._bucket,
                    Key=self._key([*segments, name]),
                    CopySource={"Bucket": self._bucket, "Key": self._key([*parent, name])},
                )
            except _S3_ERRORS as error:
                raise _storage_error("copy to", f"{handle.url}/{name}", error) from error

        with ThreadPoolExecutor(COPY_CONCURRENCY, thread_name_prefix="s3-copy") as pool:
            list(pool.map(copy, names))

    def _read_file(self, segments: Sequence[str]) -> bytes | None:
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=self._key(segments))
            return answer["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise _storage_error("read of", self._url(segments), error) from error
        except _S3_ERRORS as error:
            raise _storage_error("read of", self._url(segments), error) from error

    @contextmanager
    def _local_file(self, segments: Sequence[str]) -> Iterator[Path]:
        directory = self._prepare_local(segments)
        path = directory / segments[-1]
        try:
            try:
                self._client.download_file(self._bucket, self._key(segments), str(path))
            except _S3_ERRORS as error:
                raise _storage_error("download of", self._url(segments), error) from error
            yield path
        finally:
            _remove_temp_dir(directory)

    def _directories(self, depth: int) -> Iterator[list[str]]:
        """One flat listing of the keys under the root: a version holds a few objects, so this
        is one request per few hundred versions. Keys sort by bytes, so those sharing a prefix are
        listed together."""
        head = f"{self._prefix}/" if self._prefix else ""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=head
        )
        last: list[str] | None = None
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    segments = item["Key"][len(head) :].split("/")
                    if len(segments) > depth and segments[:depth] != last:
                        last = segments[:depth]
                        yield last
        except _S3_ERRORS as error:
            raise _storage_error("listing of", self.root_url, error) from error

    def _delete_file(self, segments: Sequence[str]) -> None:
        try:
            self._client.delete_object(Bucket=self._bucket, Key=self._key(segments))
        except _S3_ERRORS as error:
            raise _storage_error("delete of", self._url(segments), error) from error

    def _delete_tree(self, segments: Sequence[str]) -> None:
        """Delete every key under ``key/``, one listed page at a time, and the exact key with
        the first page that has room for it (deleting a missing key is no error): three requests
        for a version, its uploads listed, its keys listed, one deletion.

        The trailing ``/`` of the listed prefix is what keeps ``.../abc`` from ``.../abcd``.
        Open multipart uploads go first: one completing meanwhile then leaves an object that
        the listing still finds.
        """
        url, key = self._url(segments), self._key(segments)
        self._abort_uploads(key, url)
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=f"{key}/", PaginationConfig={"PageSize": DELETE_BATCH}
        )
        exact = [key]
        try:
            for page in pages:
                keys = [item["Key"] for item in page.get("Contents", [])]
                if exact and len(keys) < DELETE_BATCH:
                    keys, exact = keys + exact, []
                self._delete_keys(keys, url)
            self._delete_keys(exact, url)
        except _S3_ERRORS as error:
            raise _storage_error("delete of", url, error) from error

    def _delete_keys(self, keys: list[str], url: str) -> None:
        """Delete up to ``DELETE_BATCH`` keys in one request (none: no request)."""
        if not keys:
            return
        objects = [{"Key": key} for key in keys]
        result = self._client.delete_objects(
            Bucket=self._bucket, Delete={"Objects": objects, "Quiet": True}
        )
        if errors := result.get("Errors"):
            first = errors[0]
            raise StorageError(
                f"S3 delete of {url} failed: {len(errors)} objects not deleted, "
                f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
            )

    def _abort_uploads(self, key: str, url: str, initiated_before: datetime | None = None) -> int:
        """Abort the multipart uploads of ``key`` and of the keys below it (whole segments).

        S3 keeps the parts of an upload that was neither completed nor aborted, outside every
        object listing. Returns how many were aborted.
        """
        aborted = 0
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self._bucket, Prefix=key
        )
        try:
            for page in pages:
                for upload in page.get("Uploads", []):
                    below = not key or upload["Key"] == key or upload["Key"].startswith(f"{key}/")
                    old = initiated_before is None or upload["Initiated"] < initiated_before
                    if below and old and self._abort_upload(upload["Key"], upload["UploadId"]):
                        aborted += 1
        except _S3_ERRORS as error:
            raise _storage_error("abort of the uploads under", url, error) from error
        return aborted

    def _abort_upload(self, key: str, upload_id: str) -> bool:
        """False when the upload is already gone (completed or aborted by someone else)."""
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NoSuchUpload":
                return False
            raise
        return True


def _valid_endpoint(url: str) -> bool:
    """botocore's own test, which would otherwise fail ``boto3.client`` with a bare ValueError."""
    return bool(is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url))


def _storage_error(action: str, url: str, error: Exception) -> StorageError:
    """Build the API user's message from the server's reason.

    boto3 wraps an upload's ClientError in a message naming our temporary file; the reason the
    user needs is the wrapped error. botocore never puts the secret key in a message (it is
    only used to sign), so there is nothing to redact.
    """
    if isinstance(error, S3UploadFailedError) and error.__context__ is not None:
        error = error.__context__
    return StorageError(f"S3 {action} {url} failed: {error}")


def _remove_temp_dir(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except OSError as error:
        logger.warning("could not remove temporary directory %s: %s", path, error)
