"""A storage under test with a view past its own API, for the storage suite and the app tests.

A backend wraps a fresh storage (rooted at ``cache`` below a tmp_path or in a fresh bucket) with
what the tests need to look past the storage's own API: the files or keys really there, reading a
published version back, planting a file next to the root, an unusable storage, and one whose
deletions fail.
"""

from __future__ import annotations

import os
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from refresh.storage import MANIFEST_FILE, S3Storage, Storage, open_storage
from refresh.storage.manifest import part_name
from tests.support.proxy import pausable_proxy
from tests.support.seaweedfs import HOST, S3_PORT, SeaweedFS

ROOT = "cache"


def version_files(relative: str) -> set[str]:
    """The files of a one-file version at ``relative`` (a path ``files()`` names)."""
    return {f"{relative}/{part_name(0)}", f"{relative}/{MANIFEST_FILE}"}


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

    def versions(self) -> set[str]:
        """The directories under the root that hold files, relative to the root."""
        return {name.rsplit("/", 1)[0] for name in self.files()}

    def open_uploads(self) -> set[str]:
        """Keys of multipart uploads begun and neither completed nor aborted (S3 only)."""
        return set()

    def holds(self, url: str) -> bool:
        """Whether anything is stored under the directory ``url``."""
        below = f"{self.relative(url)}/"
        return any(name.startswith(below) for name in self.files())

    @abstractmethod
    def relative(self, url: str) -> str:
        """The path of ``url`` relative to the root, as ``files()`` names it."""

    @abstractmethod
    def failing_deletes(self) -> AbstractContextManager[Storage]:
        """A storage over the same root whose deletions fail while the context lasts, for a
        cause an operator meets: a read-only directory, an S3 server that went away."""

    @abstractmethod
    def read(self, url: str) -> pa.Table:
        """The table published at version directory ``url``, read without the storage: its
        ``*.parquet`` files in name order, as one table."""

    @abstractmethod
    def local_directory(self, url: str, scratch: Path) -> Path:
        """A local directory holding the Parquet files of version ``url`` (S3: downloaded into
        ``scratch``), for a reader that globs them."""

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
        """os.walk, not rglob: a directory deleted meanwhile (by a scheduler) is skipped."""
        return {
            (Path(directory) / name).relative_to(self.area).as_posix()
            for directory, _, names in os.walk(self.area)
            for name in names
        }

    def relative(self, url: str) -> str:
        return Path(url2pathname(urlsplit(url).path)).relative_to(self.area / ROOT).as_posix()

    @contextmanager
    def failing_deletes(self) -> Iterator[Storage]:
        """Every directory under the root read-only: ``chmod`` for a user, the immutable
        attribute (``chattr +i``) for root, whom permissions do not stop."""
        directories = [p for p in (self.area / ROOT).rglob("*") if p.is_dir()]
        if os.geteuid() == 0:
            made = subprocess.run(["chattr", "+i", *directories], capture_output=True, text=True)
            if made.returncode != 0:
                subprocess.run(["chattr", "-i", *directories], capture_output=True)
                pytest.fail(
                    f"cannot make {self.area} read-only for root: chattr +i failed "
                    f"({made.stderr.strip()}); run the tests as another user, or with a temporary "
                    "directory on ext4 or xfs (pytest --basetemp)",
                    pytrace=False,
                )
        else:
            for directory in directories:
                directory.chmod(0o555)
        try:
            yield self.storage
        finally:
            if os.geteuid() == 0:
                subprocess.run(["chattr", "-i", *directories], check=True)
            else:
                for directory in directories:
                    directory.chmod(0o755)

    def read(self, url: str) -> pa.Table:
        directory = self.local_directory(url, self.area)
        return pa.concat_tables(pq.read_table(p) for p in sorted(directory.glob("*.parquet")))

    def local_directory(self, url: str, scratch: Path) -> Path:
        return Path(url2pathname(urlsplit(url).path))

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

    def relative(self, url: str) -> str:
        return url.removeprefix(f"s3://{self.bucket}/{ROOT}/")

    @contextmanager
    def failing_deletes(self) -> Iterator[Storage]:
        """A storage reaching the server through a proxy, which then goes away: every request
        finds the connection refused, as when the S3 server is stopped."""
        with pausable_proxy(HOST, S3_PORT) as proxy:
            storage = open_storage(self.storage.root_url, f"http://{HOST}:{proxy.port}")
            storage.check()  # it works until the server goes
        yield storage

    def read(self, url: str) -> pa.Table:
        bodies = [
            self.client.get_object(Bucket=self.bucket, Key=k)["Body"].read()
            for k in self._parquet(url)
        ]
        return pa.concat_tables(pq.read_table(pa.BufferReader(body)) for body in bodies)

    def local_directory(self, url: str, scratch: Path) -> Path:
        directory = scratch / url.rsplit("/", 1)[1]
        directory.mkdir(parents=True, exist_ok=True)
        for key in self._parquet(url):
            self.client.download_file(self.bucket, key, str(directory / key.rsplit("/", 1)[1]))
        return directory

    def _parquet(self, url: str) -> list[str]:
        """The keys of the version's Parquet files, in name order."""
        key = url.removeprefix(f"s3://{self.bucket}/")
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{key}/"
        )
        return sorted(
            item["Key"]
            for page in pages
            for item in page.get("Contents", [])
            if item["Key"].endswith(".parquet")
        )

    def plant(self, name: str) -> str:
        self.client.put_object(Bucket=self.bucket, Key=name, Body=b"planted")
        return f"s3://{self.bucket}/{name}"

    def unusable(self) -> Storage:
        return S3Storage(f"{self.bucket}-missing", ROOT, endpoint_url=self.server.endpoint_url)


def make_backend(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    if kind == "filesystem":
        return FilesystemBackend(tmp_path)
    return S3Backend(request.getfixturevalue("s3_server"))
