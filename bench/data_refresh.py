"""Single-table data refresh of both reference tables, beside the floor and the peers.

    python -m bench.data_refresh [--rows 5000000] [--wide-rows 1000000] [--rounds 3]
                                 [--streams 1,2,4] [--double] [--keep] [--skip-pandas]

Measured in the same run, on the same tables (``bench/orders.sql``: 8 columns; ``bench/wide.sql``:
33 columns, every type the PostgreSQL mapping lists), in interleaved rounds (every path once per
round, so a noisy neighbour hits them alike), medians printed:

- the floor: ``COPY ... TO STDOUT (FORMAT binary)`` by psql into /dev/null;
- the service: ``POST /refresh`` (mode 3) in a fresh process with the embedded defaults, once per
  ``SOURCE_READ_STREAMS`` value of ``--streams`` (the scaling; the default value is the
  service's row);
- DuckDB 1.4.4's postgres scanner and dlt's connectorx path, in ``.venv-peers`` (created from
  ``bench/requirements-peers.txt`` on first use, see ``bench/peers.py``);
- once, the naive ``pandas.read_sql`` + ``DataFrame.to_parquet`` on ``orders``, in
  ``.venv-peers`` too (the service does not depend on pandas).

Seconds are the copy alone, inside each process (the floor: the whole psql process); CPU is user
+ sys of that same span, all threads; peak RSS is the whole process's (``wait4``). Every copy is
checked against the source's checksums (PostgreSQL on the source, DuckDB on the Parquet): the
service must match exactly, a peer's mismatches are printed. ``--double`` refreshes ``orders``
at twice the rows once more: peak memory must stay flat.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

from bench.common import (
    PG,
    ROOT,
    Run,
    psql,
    run_child,
    scratch_database,
    service_client,
    timed_command,
)
from config.settings import DEFAULT_READ_STREAMS

PEERS_PYTHON = ROOT / ".venv-peers/bin/python"


@dataclass(frozen=True)
class Checksum:
    name: str
    postgres: str
    duckdb: str
    inexact: bool = False  # a float sum: compared to 1e-9, the order of additions differs


def _checksums(*items: tuple[str, str, str] | tuple[str, str, str, bool]) -> list[Checksum]:
    return [Checksum(*item) for item in items]


def _text_bytes(column: str) -> tuple[str, str, str]:
    """Bytes of a column the service reads as PostgreSQL text (a peer's own type is cast)."""
    return (f"{column}_bytes", f"sum(octet_length({column}::text))", f"sum(strlen({column}::text))")


# Columns of wide that the service reads as PostgreSQL's text.
TEXT_COLUMNS = "span uid doc doc_json tags ints body status label code mood addr cash clock_tz"

CHECKSUMS = {
    "orders": _checksums(
        ("rows", "count(*)", "count(*)"),
        ("amount_sum", "sum(amount)", "sum(amount)"),
        ("note_nulls", "count(*) - count(note)", "count(*) - count(note)"),
        ("note_empty", "count(*) FILTER (WHERE note = '')", "count(*) FILTER (WHERE note = '')"),
        ("amount_nulls", "count(*) - count(amount)", "count(*) - count(amount)"),
        ("flag_nulls", "count(*) - count(flag)", "count(*) - count(flag)"),
        ("flag_true", "count(*) FILTER (WHERE flag)", "count(*) FILTER (WHERE flag)"),
        ("score_nulls", "count(*) - count(score)", "count(*) - count(score)"),
        (
            "created_at_us",
            "sum((extract(epoch FROM created_at) * 1000000)::bigint)",
            "sum(epoch_us(created_at))",
        ),
    ),
    "wide": _checksums(
        ("rows", "count(*)", "count(*)"),
        ("small_sum", "sum(small)", "sum(small)"),
        ("regular_sum", "sum(regular)", "sum(regular)"),
        ("big_sum", "sum(big::numeric)", "sum(big::hugeint)"),
        ("real4_sum", "sum(real4::float8)", "sum(real4::double)", True),
        ("real8_sum", "sum(real8)", "sum(real8)", True),
        ("price_sum", "sum(price)", "sum(price)"),
        ("rate_sum", "sum(rate)", "sum(rate)"),
        ("wide_num_sum", "sum(wide_num)", "sum(wide_num)"),
        ("free_sum", "sum(free)", "sum(free)"),
        ("flags", "count(*) FILTER (WHERE flag)", "count(*) FILTER (WHERE flag)"),
        ("at_tz_us", "sum((extract(epoch FROM at_tz) * 1000000)::bigint)", "sum(epoch_us(at_tz))"),
        (
            "at_naive_us",
            "sum((extract(epoch FROM at_naive) * 1000000)::bigint)",
            "sum(epoch_us(at_naive))",
        ),
        ("day_sum", "sum(day - date '1970-01-01')", "sum(day - date '1970-01-01')"),
        ("clock_us", "sum((extract(epoch FROM clock) * 1000000)::bigint)", "sum(epoch_us(clock))"),
        *(_text_bytes(column) for column in TEXT_COLUMNS.split()),
        ("raw_bytes", "sum(octet_length(raw))", "sum(octet_length(raw))"),
        ("notes", "count(note)", "count(note)"),
        ("ratio_sum", "sum(ratio::float8)", "sum(ratio::double)", True),
        ("counter_sum", "sum(counter)", "sum(counter)"),
    ),
}

# orders.sql's own checksum query (bench/native_refresh.py checks its MariaDB and SQLite copies
# against it).
CHECKSUMS_PG = f"SELECT {', '.join(c.postgres for c in CHECKSUMS['orders'])} FROM orders"


@dataclass(frozen=True)
class Measure:
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    copy: Path | None = None  # the directory of the copy, until it is checked
    parquet: str = ""  # the copy's Parquet file(s), a glob
    mismatches: tuple[str, ...] = ()  # checksums the copy gets wrong
    error: str = ""  # the path could not copy the table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows of orders")
    parser.add_argument("--wide-rows", type=int, default=1_000_000, help="rows of wide")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--streams", default="1,2,4", help="SOURCE_READ_STREAMS values to run")
    parser.add_argument("--double", action="store_true", help="also refresh 2x orders (RSS)")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the source tables")
    parser.add_argument("--skip-pandas", action="store_true", help="skip the naive pandas path")
    parser.add_argument("--db-prefix", default="rs_bench", help="names of the scratch databases")
    parser.add_argument("--child", nargs=3, metavar=("DB", "TABLE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_service(*args.child)
        return

    streams = sorted({int(value) for value in args.streams.split(",")} | {DEFAULT_READ_STREAMS})
    ensure_peers()
    tables = [("orders", args.rows), ("wide", args.wide_rows)]
    with tempfile.TemporaryDirectory(prefix="bench-refresh-") as work:
        for table, rows in tables:
            with reference_table(table, rows, args) as database:
                expected = source_checksums(database, table)
                results: dict[str, list[Measure]] = defaultdict(list)
                for round_number in range(args.rounds):
                    print(f"{table}: round {round_number + 1} of {args.rounds}", file=sys.stderr)
                    for name, measure in run_round(database, table, streams, Path(work)):
                        results[name].append(checked(measure, table, expected))
                if table == "orders" and not args.skip_pandas:
                    results[PEER_NAMES["pandas"]] = [
                        checked(run_peer("pandas", database, table, Path(work)), table, expected)
                    ]
                print_table(table, rows, results, streams)
        if args.double:
            with reference_table("orders", 2 * args.rows, args) as database:
                expected = source_checksums(database, "orders")
                service = run_service(database, "orders", DEFAULT_READ_STREAMS, Path(work))
                twice = checked(service, "orders", expected)
                if twice.mismatches:
                    raise SystemExit(f"the service's copy does not match: {twice.mismatches}")
                print(
                    f"\norders at {2 * args.rows:,} rows: service {twice.seconds:.2f} s, "
                    f"peak RSS {twice.peak_rss_mb:.0f} MB (flat in table size?)"
                )


@contextmanager
def reference_table(table: str, rows: int, args: argparse.Namespace) -> Iterator[str]:
    """The database holding ``bench/{table}.sql`` at ``rows`` rows (created when missing)."""
    with scratch_database(f"{args.db_prefix}_{table}_{rows}", keep=args.keep) as database:
        if not psql(database, "-tAc", f"SELECT to_regclass('{table}')").strip():
            print(f"creating {table} with {rows:,} rows ...", file=sys.stderr)
            psql(database, "-v", f"rows={rows}", "-f", str(ROOT / f"bench/{table}.sql"))
        yield database


def run_round(
    database: str, table: str, streams: list[int], work: Path
) -> list[tuple[str, Measure]]:
    measures = [("COPY binary to /dev/null (floor)", run_floor(database, table))]
    for count in streams:
        measures.append((service_name(count), run_service(database, table, count, work)))
    for peer in ("duckdb", "dlt"):
        measures.append((PEER_NAMES[peer], run_peer(peer, database, table, work)))
    return measures


PEER_NAMES = {
    "duckdb": "DuckDB 1.4.4 postgres scanner",
    "dlt": "dlt sql_table, connectorx backend",
    "pandas": "naive pandas.read_sql + to_parquet",
}


def service_name(streams: int) -> str:
    return f"service: POST /refresh, {streams} stream{'s' if streams > 1 else ''}"


def run_floor(database: str, table: str) -> Measure:
    command = ["psql", "-X", "-h", PG["host"], "-U", PG["user"], "-d", database, "-c"]
    run = timed_command([*command, f"COPY {table} TO STDOUT (FORMAT binary)"])
    return Measure(run.seconds, run.cpu_seconds, run.peak_rss_mb)


def run_service(database: str, table: str, streams: int, work: Path) -> Measure:
    out = Path(tempfile.mkdtemp(prefix="service-", dir=work))
    run = run_child("-m", "bench.data_refresh", "--child", database, table, str(out),
                    env={"SOURCE_READ_STREAMS": str(streams)})  # fmt: skip
    return child_measure(run, out)


def run_peer(peer: str, database: str, table: str, work: Path) -> Measure:
    out = Path(tempfile.mkdtemp(prefix=f"{peer}-", dir=work))
    # connectorx panics (Rust) on some types: one line of error is enough, not a backtrace.
    run = run_child("bench/peers.py", peer, database, table, str(out),
                    env={"RUST_BACKTRACE": "0"}, python=str(PEERS_PYTHON))  # fmt: skip
    return child_measure(run, out)


def child_measure(run: Run, out: Path) -> Measure:
    """The figures a child printed (its last line of JSON), with the peak RSS of its process."""
    report = json.loads(run.stdout.strip().splitlines()[-1])
    if "error" in report:
        shutil.rmtree(out)
        return Measure(math.nan, math.nan, run.peak_rss_mb, error=report["error"])
    seconds, cpu_seconds = report["seconds"], report["cpu_seconds"]
    return Measure(seconds, cpu_seconds, run.peak_rss_mb, copy=out, parquet=report["parquet"])


def source_checksums(database: str, table: str) -> dict[str, object]:
    import psycopg

    items = CHECKSUMS[table]
    query = f"SELECT {', '.join(item.postgres for item in items)} FROM {table}"
    with psycopg.connect(**PG, dbname=database) as conn:
        row = conn.execute(query).fetchone()
    return dict(zip([item.name for item in items], row, strict=True))


def check(database: str, parquet: str) -> None:
    """A copy of ``orders`` (a Parquet glob) must match orders.sql's checksums exactly.

    For the other benchmarks (bench/connection_refresh.py) that copy the reference table.
    """
    expected = source_checksums(database, "orders")
    wrong = mismatches(parquet, "orders", expected)
    if wrong:
        raise SystemExit(f"the copy of orders does not match the source: {wrong}")
    print(f"checksums match: {tuple(expected.values())}", file=sys.stderr)


def checked(measure: Measure, table: str, expected: dict[str, object]) -> Measure:
    """The measure with the checksums its copy gets wrong; the copy is then removed."""
    if measure.copy is None:
        return measure
    wrong = mismatches(measure.parquet, table, expected)
    shutil.rmtree(measure.copy)
    return replace(measure, copy=None, mismatches=wrong)


def mismatches(parquet: str, table: str, expected: dict[str, object]) -> tuple[str, ...]:
    """The names of the checksums the Parquet copy (DuckDB reads it) gets wrong."""
    import duckdb

    wrong = []
    con = duckdb.connect()
    for item in CHECKSUMS[table]:
        try:
            query = f"SELECT {item.duckdb} FROM read_parquet(?)"
            [actual] = con.execute(query, [parquet]).fetchone()
        except duckdb.Error:
            wrong.append(item.name)  # the copy's type has no such operation
            continue
        if not same(expected[item.name], actual, item.inexact):
            wrong.append(item.name)
    return tuple(wrong)


def same(expected: object, actual: object, inexact: bool) -> bool:
    if expected is None or actual is None:
        return expected is actual
    if inexact:
        return math.isclose(float(expected), float(actual), rel_tol=1e-9)  # type: ignore[arg-type]
    return Decimal(str(expected)) == Decimal(str(actual))


def print_table(
    table: str, rows: int, results: dict[str, list[Measure]], streams: list[int]
) -> None:
    def median(name: str, field: str) -> float:
        values = [getattr(m, field) for m in results[name] if not m.error]
        return statistics.median(values) if values else math.nan

    floor = median("COPY binary to /dev/null (floor)", "seconds")
    service = median(service_name(DEFAULT_READ_STREAMS), "seconds")
    rounds = max(len(measures) for measures in results.values())
    print(f"\n{table}: {rows:,} rows, median of {rounds} interleaved rounds")
    print(
        f"{'path':42} {'seconds':>8} {'rows/s':>11} {'CPU s':>6} {'peak RSS':>9} "
        f"{'vs floor':>9} {'vs service':>11}  check"
    )
    for name, measures in results.items():
        seconds = median(name, "seconds")
        errors = {m.error for m in measures if m.error}
        wrong = sorted({w for m in measures for w in m.mismatches})
        if errors:
            print(f"{name:42} {'failed: ' + '; '.join(sorted(errors))}")
            continue
        default = " (default)" if name == service_name(DEFAULT_READ_STREAMS) else ""
        print(
            f"{name + default:42} {seconds:>8.2f} {rows / seconds:>11,.0f} "
            f"{median(name, 'cpu_seconds'):>6.2f} {max(m.peak_rss_mb for m in measures):>7.0f}MB "
            f"{floor / seconds:>8.2f}x {seconds / service:>10.2f}x  "
            + ("ok" if not wrong else "differs: " + ", ".join(wrong))
        )
        if "service" in name and wrong:
            raise SystemExit(f"the service's copy of {table} does not match the source: {wrong}")
    for peer, target in (("duckdb", 1.0), ("dlt", 2.0)):
        ratio = median(PEER_NAMES[peer], "seconds") / service
        if math.isnan(ratio):
            print(f"service vs {peer}: n/a ({peer} could not copy the table)")
            continue
        verdict = "met" if ratio >= target else "NOT met"
        print(f"service vs {peer}: {ratio:.2f}x as fast (target {target:.0f}x: {verdict})")


def ensure_peers() -> None:
    """Create .venv-peers from bench/requirements-peers.txt, and bring it up to date whenever that
    file changes (as bin/venv does for the service's own)."""
    requirements = ROOT / "bench/requirements-peers.txt"
    stamp = ROOT / ".venv-peers/.installed-requirements-peers.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if PEERS_PYTHON.exists() and stamp.exists() and stamp.read_text() == digest:
        return
    print("installing .venv-peers (bench/requirements-peers.txt) ...", file=sys.stderr)
    if not PEERS_PYTHON.exists():
        subprocess.run(["python3", "-m", "venv", str(ROOT / ".venv-peers")], check=True)
    subprocess.run(
        [str(PEERS_PYTHON), "-m", "pip", "install", "--quiet", "-r", str(requirements)],
        check=True,
    )
    stamp.write_text(digest)


def child_service(database: str, table: str, out: str) -> None:
    """The service's own code path, in a process of its own, embedded defaults under ``out``.

    ``SOURCE_READ_STREAMS`` comes from this process's environment, set by the parent.
    """
    from refresh.storage.filesystem import file_url_path

    client = service_client(Path(out), SOURCE_READ_STREAMS=os.environ["SOURCE_READ_STREAMS"])
    config = {**PG, "database": database}
    response = client.post(
        "/connections", json={"name": "bench", "source_type": "postgres", "config": config}
    )
    assert response.status_code == 201, response.get_json()
    body = {"connection_id": "bench", "schema_name": "public", "table_name": table, "data": True}
    cpu_before = sum(os.times()[:2])
    response = client.post("/refresh", json=body)
    cpu_seconds = sum(os.times()[:2]) - cpu_before
    assert response.status_code == 200, response.get_json()
    path = client.get(f"/connections/bench/tables/public/{table}").get_json()["current_path"]
    report = {
        "seconds": response.get_json()["duration_ms"] / 1000,
        "cpu_seconds": cpu_seconds,
        "parquet": f"{file_url_path(path)}/*.parquet",
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
