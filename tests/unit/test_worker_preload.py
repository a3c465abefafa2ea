"""What the worker process loads before it forks a work horse per table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run in a process of its own: what the test process has loaded says nothing about the worker's.
PROBE = """
import sqlalchemy.orm
import workers.worker
from refresh.catalog import Connection
from tests.support.mysql_readers import zygotes
maps = open("/proc/self/maps").read()
print("postgres" if "libadbc_driver_postgresql.so" in maps else "-")
print("sqlite" if "libadbc_driver_sqlite.so" in maps else "-")
print("mappers" if sqlalchemy.orm.class_mapper(Connection).configured else "-")
print("mysql-zygote" if zygotes() else "-")
"""


def test_the_worker_loads_drivers_starts_the_mysql_zygote_and_configures_mappers() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["postgres", "sqlite", "mappers", "mysql-zygote"]
