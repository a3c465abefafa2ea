"""A data refresh whose process is killed mid-write, as when its machine dies.

Run as ``python -m tests.support.dying_refresh CONNECTION SCHEMA TABLE [before-manifest]`` with
the service's environment. The process SIGKILLs itself, so nothing of it cleans up: on the
filesystem once the first row group is in the version's first file, on S3 once the first part of a
multipart upload is stored (the table must hold more than ``ROW_GROUP_ROWS`` rows, and on S3 more
than ``PART`` bytes of Parquet); with ``before-manifest``, once every file of the version is
written (an incremental one's carried over too), as its manifest is about to be stored. Its claim
stays ``writing`` with a heartbeat that stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping

import pyarrow as pa
from boto3.s3.transfer import TransferConfig

from config import load_settings
from refresh import data_refresh, version_build
from refresh.common.parquet import ROW_GROUP_ROWS
from refresh.runtime import Runtime
from refresh.storage import S3Storage
from tests.support.paths import ROOT

PART = 5 * 1024 * 1024  # the smallest part S3 accepts


def die(*_: object, **__: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(connection_id: str, schema_name: str, table_name: str, when: str = "mid-write") -> None:
    rt = Runtime.from_settings(load_settings())
    if when == "before-manifest":
        rt.storage.finalize_cache_write = die  # type: ignore[method-assign]
    elif isinstance(rt.storage, S3Storage):
        S3Storage.transfer_config = TransferConfig(
            multipart_threshold=PART, multipart_chunksize=PART
        )
        rt.storage._client.meta.events.register("after-call.s3.UploadPart", die)
    else:
        write = version_build.write_parquet_files

        def dying_write(batches: Iterable[pa.RecordBatch], *args: object) -> object:
            def a_row_group_then_die() -> Iterator[pa.RecordBatch]:
                rows = 0
                for batch in batches:
                    if rows >= ROW_GROUP_ROWS:  # the writer has written the first group
                        die()
                    rows += batch.num_rows
                    yield batch

            return write(a_row_group_then_die(), *args)

        version_build.write_parquet_files = dying_write
    data_refresh.refresh_table(rt, connection_id, schema_name, table_name)
    sys.exit("the refresh finished: it was meant to be killed mid-write")


def kill_a_refresh(environ: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run this module (``args``: as above) in a process of its own with the service's
    ``environ`` added; its outcome, for the caller to check it was killed."""
    return subprocess.run(
        [sys.executable, "-m", "tests.support.dying_refresh", *args],
        cwd=ROOT,
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=120,
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
