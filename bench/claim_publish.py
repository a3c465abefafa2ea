"""What a table's claim and publish cost in the catalog, alone: PostgreSQL, one thread.

    python -m bench.claim_publish [--rounds 2000] [--tables 50]

Claims and publishes versions of ``--tables`` tables in a row, as a batch thread does
(``refresh.versions``, a pinned catalog), and prints the wall time and this process's CPU time of
each step, and the whole machine's CPU time (PostgreSQL included) per table. Publishing is run
both ways, interleaved: in one statement (what PostgreSQL catalogs use, decisions D105) and in
steps (what SQLite catalogs use).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from unittest import mock

from bench.common import PG, scratch_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--tables", type=int, default=50)
    args = parser.parse_args()

    from config import load_settings
    from refresh.catalog import Connection, PinnedCatalog, Table, utcnow
    from refresh.catalog.migrations import upgrade
    from refresh.runtime import Runtime
    from refresh.versions.claims import Wanted, claim
    from refresh.versions.outcomes import Written, publish

    @contextmanager
    def in_steps(steps: bool) -> Iterator[None]:
        if not steps:
            yield
            return
        with mock.patch.object(PinnedCatalog, "dialect", "steps"):
            yield

    with (
        scratch_database("rs_bench_claim_publish") as database,
        tempfile.TemporaryDirectory() as work,
    ):
        url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{database}"
        environ = {"DATABASE_URL": url, "CACHE_URL": f"file://{work}", "SECRET_KEY": "bench"}
        rt = Runtime.from_settings(load_settings(environ))
        upgrade(rt.catalog)
        with rt.catalog.session() as session:
            session.add(Connection(id="bench", source_type="postgres", config={}))
            session.flush()
            tables = [
                Table(connection_id="bench", schema_name="public", table_name=f"t{i}",
                      arrow_schema={}, schema_hash="", discovered_at=utcnow())
                for i in range(args.tables)
            ]  # fmt: skip
            session.add_all(tables)
            session.flush()
            ids = [table.id for table in tables]
        pinned = replace(rt, catalog=rt.catalog.pinned())
        print(f"{args.rounds} versions claimed and published each way; averages per table")
        for way in ["one statement", "steps", "one statement", "steps"]:
            claiming = publishing = claim_cpu = publish_cpu = 0.0
            machine = _machine_cpu()
            with in_steps(way == "steps"):
                for number in range(args.rounds):
                    wanted = Wanted(ids[number % len(ids)], f"v{number}", f"file:///v/{number}")
                    started, cpu = time.perf_counter(), _cpu()
                    held = claim(pinned, wanted, None)
                    claimed, claimed_cpu = time.perf_counter(), _cpu()
                    written = Written(held, "public", "t", held.path, 10, 100, 10, "full", None)
                    publish(pinned, written, 0.1)
                    claiming += claimed - started
                    claim_cpu += claimed_cpu - cpu
                    publishing += time.perf_counter() - claimed
                    publish_cpu += _cpu() - claimed_cpu
            machine = _machine_cpu() - machine
            per = 1000 / args.rounds
            print(
                f"publish in {way:13s}: claim {claiming * per:.3f} ms ({claim_cpu * per:.3f} CPU), "
                f"publish {publishing * per:.3f} ms ({publish_cpu * per:.3f} CPU); "
                f"the machine's CPU {machine * per:.3f} ms a table"
            )


def _cpu() -> float:
    return sum(os.times()[:2])


def _machine_cpu() -> float:
    """CPU seconds the whole machine spent (every process), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
