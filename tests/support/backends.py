"""A storage under test with a view past its own API, for the storage suite and the app tests.

A backend wraps a fresh storage (rooted at ``cache`` below a tmp_path or in a fresh bucket) with
what the tests need to look past the storage's own API: the files or keys really there, reading a
published version back, planting a file next to the root, and an unusable storage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from refresh.storage import DATA_FILE, S3Storage, Storage, open_storage
from tests.support.seaweedfs import SeaweedFS

ROOT = "cache"


class Backend(ABC):
    storage: Storage

    @abstractmethod
    def everything(self) -> set[str]:
        """Every file or key in the area around the root (tmp_path, bucket), relative to it."""

    def files(self) -> set[str]:
        """Every file or key under the storage root, relative to the root."""
        return {
            name.removeprefix(f"{ROOT}/")
            for name in self.everything()
            if name.startswith(f"{ROOT}/")
        }

    def environ(self) -> dict[str, str]:
        """The service's settings for this storage."""
        return {"CACHE_URL": self.storage.root_url}

    def open_uploads(self) -> set[str]:
        """Keys of multipart uploads begun and neither completed nor aborted (S3 only)."""
        return set()

    @abstractmethod
    def read(self, url: str) -> pa.Table:
        """The table published at version directory ``url``, read without the storage."""

    @abstractmethod
    def plant(self, name: str) -> str:
        """Create a file ``name`` relative to the area (not the root) and return its URL."""

    @abstractmethod
    def unusable(self) -> Storage:
        """A storage of this kind that cannot work: its root cannot exist."""


class FilesystemBackend(Backend):
    def __init__(self, area: Path) -> None:
        self.area = area
        self.storage = open_storage((area / ROOT).as_uri(), None)

    def everything(self) -> set[str]:
        return {p.relative_to(self.area).as_posix() for p in self.area.rglob("*") if p.is_file()}

    def read(self, url: str) -> pa.Table:
        return pq.read_table(Path(url2pathname(urlsplit(url).path)) / DATA_FILE)

    def plant(self, name: str) -> str:
        path = self.area / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"planted")
        return path.as_uri()

    def unusable(self) -> Storage:
        blocker = self.area / "a-file"
        blocker.write_text("a file where a directory should be")
        return open_storage((blocker / ROOT).as_uri(), None)


class S3Backend(Backend):
    def __init__(self, server: SeaweedFS) -> None:
        self.server = server
        self.bucket = server.create_bucket()
        self.client = server.client()
        self.storage = open_storage(f"s3://{self.bucket}/{ROOT}", server.endpoint_url)

    def environ(self) -> dict[str, str]:
        return {**super().environ(), "S3_ENDPOINT_URL": self.server.endpoint_url}

    def everything(self) -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def open_uploads(self) -> set[str]:
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket)
        return {upload["Key"] for page in pages for upload in page.get("Uploads", [])}

    def read(self, url: str) -> pa.Table:
        bucket, key = url.removeprefix("s3://").split("/", 1)
        body = self.client.get_object(Bucket=bucket, Key=f"{key}/{DATA_FILE}")["Body"].read()
        return pq.read_table(pa.BufferReader(body))

    def plant(self, name: str) -> str:
        self.client.put_object(Bucket=self.bucket, Key=name, Body=b"planted")
        return f"s3://{self.bucket}/{name}"

    def unusable(self) -> Storage:
        return S3Storage(f"{self.bucket}-missing", ROOT, endpoint_url=self.server.endpoint_url)


def make_backend(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    if kind == "filesystem":
        return FilesystemBackend(tmp_path)
    return S3Backend(request.getfixturevalue("s3_server"))
