"""Data refresh of the reference ``orders`` table from MariaDB and SQLite, beside connectorx.

    python -m bench.native_refresh [--rows 1000000] [--repeat 3] [--keep] [--skip-generic]
                                   [--engine mysql|sqlite]

The PostgreSQL ``orders`` of ``bench/orders.sql`` is the one generator: its rows are copied into
MariaDB (``LOAD DATA LOCAL INFILE`` of a ``COPY ... csv``) and into a SQLite file, whose own
checksums must equal PostgreSQL's before anything is measured. Then, interleaved ``--repeat``
times (medians reported), each in a fresh process:

- the service: ``POST /refresh`` (mode 3) with the embedded defaults; its in-process time, the
  CPU time (user + sys) of the process and its descendants, and the peak RSS of the service
  process "+" that of its largest descendant (MySQL's connectorx reader, or its zygote); for
  MySQL also on the table's first 10 rows, the fixed cost a connection of many small tables
  pays per table;
- connectorx 0.4.6 alone: ``read_sql(return_type="arrow")`` + ``pyarrow.parquet.write_table``
  (zstd), the reference reader, and its streaming form (``arrow_stream`` + ``ParquetWriter``);
- with ``--skip-generic`` not given, the generic ``sqlalchemy`` source on the same tables.

``--engine`` measures one engine only (the copies of both are still made and checked).

Every Parquet copy is checked against PostgreSQL's checksums (DuckDB on the copy), the 10-row
one by its row count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymysql

from bench.common import (
    PG,
    ROOT,
    ensure_orders,
    psql,
    run_child,
    scratch_database,
    service_client,
    status_mb,
)
from bench.data_refresh import CHECKSUMS_PG

MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root"}
# The first rows of orders in MariaDB: a refresh's fixed cost, which a connection of many small
# tables pays per table.
SMALL, SMALL_ROWS = "orders_small", 10
WORK = ROOT / "var" / "bench"

# The PostgreSQL rows as MariaDB and SQLite take them: timestamps as UTC text, booleans as 0/1.
EXPORT = (
    "SELECT id, customer_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), "
    "amount::text, status, note, flag::int, score FROM orders ORDER BY id"
)
MYSQL_TABLE = """CREATE TABLE orders (
  id bigint PRIMARY KEY, customer_id int NOT NULL, created_at datetime(6) NOT NULL,
  amount decimal(12,2), status text NOT NULL, note text, flag bool, score double)"""
SQLITE_TABLE = """CREATE TABLE orders (
  id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, created_at DATETIME NOT NULL,
  amount DECIMAL(12,2), status TEXT NOT NULL, note TEXT, flag BOOLEAN, score DOUBLE)"""
# orders.sql's checksums in each engine (SQLite: amounts in cents, as it stores REALs; the
# epoch sum in two parts, which Python adds).
CHECKSUMS_MYSQL = """
SELECT count(*), sum(amount), count(*) - count(note), sum(note = ''), count(*) - count(amount),
       count(*) - count(flag), sum(flag), count(*) - count(score),
       sum(timestampdiff(MICROSECOND, '1970-01-01', created_at))
FROM orders"""
CHECKSUMS_SQLITE = """
SELECT count(*), sum(CAST(round(amount * 100) AS INTEGER)), count(*) - count(note),
       sum(note = ''), count(*) - count(amount), count(*) - count(flag), sum(flag),
       count(*) - count(score),
       sum(unixepoch(substr(created_at, 1, 19))), sum(CAST(substr(created_at, 21) AS INTEGER))
FROM orders"""
# The same on any Parquet copy: flags as integers and amounts as cents cover every copy's types
# (connectorx reads SQLite's DECIMAL as double and MySQL's bool as int8).
CHECKSUMS_PARQUET = """
SELECT count(*), sum(CAST(amount AS DECIMAL(12, 2))), count(*) - count(note),
       count(*) FILTER (WHERE note = ''), count(*) - count(amount), count(*) - count(flag),
       count(*) FILTER (WHERE CAST(flag AS INTEGER) = 1), count(*) - count(score),
       sum(epoch_us(created_at))
FROM read_parquet(?)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs (median shown)")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the source tables")
    parser.add_argument("--skip-generic", action="store_true", help="skip the sqlalchemy source")
    parser.add_argument("--engine", choices=["mysql", "sqlite"], help="measure this engine only")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        CHILDREN[args.child[0]](*args.child[1:])
        return

    name = f"rs_native_bench_orders_{args.rows}"
    with scratch_database(name, keep=args.keep) as database:
        expected = prepare(database, args.rows, args.keep)
        paths = {
            ("service", "mysql"): ["service", "mysql", name],
            (f"service, {SMALL_ROWS} rows", "mysql"): ["service", "mysql", name, SMALL],
            ("service", "sqlite"): ["service", "sqlite", str(sqlite_path(name))],
            ("connectorx arrow", "mysql"): ["cx", "arrow", mysql_url(name)],
            ("connectorx arrow", "sqlite"): ["cx", "arrow", f"sqlite://{sqlite_path(name)}"],
            ("connectorx arrow_stream", "mysql"): ["cx", "arrow_stream", mysql_url(name)],
            ("connectorx arrow_stream", "sqlite"): [
                "cx",
                "arrow_stream",
                f"sqlite://{sqlite_path(name)}",
            ],
        }
        if not args.skip_generic:
            paths["generic sqlalchemy", "mysql"] = [
                "generic",
                f"mysql+pymysql://{mysql_url(name)[8:]}",
            ]
            paths["generic sqlalchemy", "sqlite"] = ["generic", f"sqlite:///{sqlite_path(name)}"]
        if args.engine:
            paths = {key: child for key, child in paths.items() if key[1] == args.engine}
        runs: dict[tuple[str, str], list[dict]] = {key: [] for key in paths}
        for attempt in range(args.repeat):
            for key, child in paths.items():
                if key[0] == "generic sqlalchemy" and attempt > 0:
                    continue  # minutes per run at this speed; one is enough for its figure
                print(f"run {attempt + 1}/{args.repeat}: {key[0]} ({key[1]}) ...", file=sys.stderr)
                runs[key].append(measure(child, expected))
        if not args.keep:
            drop_copies(name)
    print_table(args.rows, runs)


def prepare(database: str, rows: int, keep: bool) -> tuple:
    """The three copies of ``orders``, checked equal; returns PostgreSQL's checksums."""
    ensure_orders(database, rows)
    import psycopg

    with psycopg.connect(**PG, dbname=database) as conn:
        expected = tuple(conn.execute(CHECKSUMS_PG).fetchone())
    copy_to_mysql(database, keep)
    copy_to_sqlite(database, keep)
    with admin_mysql(database) as conn, conn.cursor() as cur:
        cur.execute(CHECKSUMS_MYSQL)
        in_mysql = list(cur.fetchone())
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {SMALL} AS "
            f"SELECT * FROM orders ORDER BY id LIMIT {SMALL_ROWS}"
        )
    *in_sqlite, seconds, micros = (
        sqlite3.connect(sqlite_path(database)).execute(CHECKSUMS_SQLITE).fetchone()
    )
    in_sqlite.append(seconds * 1_000_000 + micros)  # one sum would overflow SQLite's int64
    # Amounts compared in cents, everything as integers.
    want = [int(v) for v in (expected[0], expected[1] * 100, *expected[2:])]
    for engine, got in (("MariaDB", [in_mysql[0], in_mysql[1] * 100, *in_mysql[2:]]),
                        ("SQLite", in_sqlite)):  # fmt: skip
        if [int(v) for v in got] != want:
            raise SystemExit(f"the {engine} copy differs:\n postgres {want}\n {engine} {got}")
    print(f"source checksums (PostgreSQL = MariaDB = SQLite): {expected}", file=sys.stderr)
    return expected


def admin_mysql(database: str | None = None, **extra: object) -> pymysql.Connection:
    return pymysql.connect(**MYSQL, database=database, charset="utf8mb4", autocommit=True, **extra)


def fill_mysql(tables: int, rows: int) -> str:
    """A MariaDB database of ``tables`` tables with the columns of ``orders`` and ``rows``
    generated rows each (as ``bench.profile_batch`` makes SQLite and DuckDB files), made once and
    kept; its name."""
    database = f"rs_bench_profile_{tables}x{rows}"
    with admin_mysql() as con, con.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (database,)
        )
        if cur.fetchone()[0] == tables:
            return database
        print(f"creating {tables} MariaDB tables of {rows:,} rows ...", file=sys.stderr)
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{database}`")
        cur.execute(
            "CREATE TEMPORARY TABLE template AS SELECT seq AS id, seq % 100000 AS customer_id,"
            " TIMESTAMPADD(SECOND, seq, '2026-01-01 00:00:00') AS created_at,"
            " CAST((seq % 100000) / 100 AS DECIMAL(12, 2)) AS amount,"
            " CONCAT('status-', seq % 5) AS status,"
            " IF(seq % 3 = 0, NULL, CONCAT('note ', seq)) AS note, seq % 2 = 0 AS paid,"
            f" seq / 7.0e0 AS weight FROM seq_0_to_{rows - 1}"
        )
        for number in range(tables):
            cur.execute(f"CREATE TABLE t{number:04d} (PRIMARY KEY (id)) AS SELECT * FROM template")
    return database


def copy_to_mysql(database: str, keep: bool) -> None:
    with admin_mysql() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (database,))
        if keep and cur.fetchone():
            return
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    print("copying orders into MariaDB ...", file=sys.stderr)
    with tempfile.NamedTemporaryFile(suffix=".csv") as csv:
        copy = f"COPY ({EXPORT}) TO STDOUT (FORMAT csv, NULL 'NULL', FORCE_QUOTE (status, note))"
        psql(database, "-c", copy, stdout=csv.fileno())
        with admin_mysql(database, local_infile=True) as conn, conn.cursor() as cur:
            cur.execute(MYSQL_TABLE)
            cur.execute(
                f"LOAD DATA LOCAL INFILE '{csv.name}' INTO TABLE orders CHARACTER SET utf8mb4 "
                "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                "LINES TERMINATED BY '\\n'"
            )


def copy_to_sqlite(database: str, keep: bool) -> None:
    import psycopg

    path = sqlite_path(database)
    if keep and path.exists():
        return
    print("copying orders into SQLite ...", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    target = sqlite3.connect(path)
    target.execute(SQLITE_TABLE)
    with psycopg.connect(**PG, dbname=database) as conn, conn.cursor(name="export") as cur:
        cur.execute(EXPORT)
        while rows := cur.fetchmany(50_000):
            target.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    target.commit()
    target.close()


def drop_copies(database: str) -> None:
    with admin_mysql() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
    sqlite_path(database).unlink(missing_ok=True)


def sqlite_path(database: str) -> Path:
    return WORK / f"{database}.sqlite"


def mysql_url(database: str) -> str:
    return f"mysql://{MYSQL['user']}@{MYSQL['host']}:{MYSQL['port']}/{database}"


def measure(child: list[str], expected: tuple) -> dict:
    run = run_child("-m", "bench.native_refresh", "--child", *child)
    report = json.loads(run.stdout)
    check(report["parquet"], expected if SMALL not in child else None)
    return report


def check(parquet: str, expected: tuple | None) -> None:
    """The copy against the source's checksums; the small table only by its row count."""
    import duckdb

    if expected is None:
        sql, expected = "SELECT count(*) FROM read_parquet(?)", (SMALL_ROWS,)
    else:
        sql = CHECKSUMS_PARQUET
    actual = duckdb.connect().execute(sql, [parquet]).fetchone()
    if tuple(actual) != tuple(expected):
        raise SystemExit(f"checksums differ:\n source  {expected}\n parquet {actual}")


def print_table(rows: int, runs: dict[tuple[str, str], list[dict]]) -> None:
    """Medians; "peak RSS" is each process's own peak (service + reader process), "at once" the
    largest sum of their RSS at one instant."""
    print(f"{rows:,} rows; medians of {max(len(r) for r in runs.values())} interleaved runs")
    header = f"{'path':24} {'engine':7} {'seconds':>8} {'cpu s':>6} {'rows/s':>10} {'peak RSS':>10}"
    print(f"{header} {'at once':>8} {'vs cx arrow':>12} {'vs cx stream':>13}")
    for (path, engine), results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        cpu = statistics.median(r["cpu_seconds"] for r in results)
        peak = statistics.median(r["peak_mb"] for r in results)
        child = statistics.median(r.get("child_mb", 0) for r in results)
        total = statistics.median(r.get("total_mb") or r["peak_mb"] for r in results)
        memory = f"{peak:.0f}+{child:.0f}MB" if child else f"{peak:.0f}MB"
        small = path.endswith(f"{SMALL_ROWS} rows")
        ratios = []
        for reference in ("connectorx arrow", "connectorx arrow_stream"):
            base = statistics.median(r["seconds"] for r in runs[reference, engine])
            ratios.append("-" if small else f"{base / seconds:.2f}x")
        print(
            f"{path:24} {engine:7} {seconds:>8.2f} {cpu:>6.2f} "
            f"{(SMALL_ROWS if small else rows) / seconds:>10,.0f} "
            f"{memory:>10} {total:>6.0f}MB {ratios[0]:>12} {ratios[1]:>13}"
        )


def _usage() -> dict:
    """CPU of this process and its descendants; peak RSS of this process (VmHWM).

    Descendants still running (MySQL's reader zygote) count with their reaped children (the
    readers it forked). Not ``ru_maxrss``: Linux carries a process's peak over ``exec``, so a
    child started by a 300 MB process reports at least 300 MB whatever it used itself.
    """
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    for pid in _descendants():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile: counted once it is reaped
            continue
        cpu += sum(int(ticks) for ticks in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return {"cpu_seconds": cpu, "peak_mb": status_mb("self", "VmHWM")}


def _descendants(parent: str = "self") -> list[str]:
    """This process's children, theirs, and so on; a process that ended meanwhile is left out."""
    try:
        tasks = list(Path(f"/proc/{parent}/task").iterdir())
    except OSError:
        return []
    found = []
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread ended
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


class ChildMemory(threading.Thread):
    """Samples this process's descendants (MySQL's reader and its zygote) every 10 ms while a
    refresh runs.

    ``child_mb`` is the largest descendant's peak RSS (VmHWM, which only grows, so sampling
    misses at most its last 10 ms); ``total_mb`` the largest sum of this process's RSS and its
    descendants' at one instant: the memory the refresh needed at once (a little more: a reader
    and its zygote share the pages of their imports, counted in both).
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.child_mb = self.total_mb = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.01):
            pids = _descendants()
            children = sum(status_mb(pid, "VmRSS") for pid in pids)
            self.total_mb = max(self.total_mb, status_mb("self", "VmRSS") + children)
            for pid in pids:
                self.child_mb = max(self.child_mb, status_mb(pid, "VmHWM"))

    def __enter__(self) -> ChildMemory:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self.join()


def child_service(engine: str, target: str, table: str = "orders") -> None:
    """The service's own code path in a fresh process, embedded defaults in a temp dir."""
    if engine == "mysql":
        source = {"source_type": "mysql", "config": {**MYSQL, "database": target}}
        schema = target
    elif engine == "sqlite":
        source, schema = {"source_type": "sqlite", "config": {"path": target}}, "main"
    else:
        source = {"source_type": "sqlalchemy", "config": {"url": target}}
        schema = target.rsplit("/", 1)[1] if target.startswith("mysql") else "main"
    refresh(source, schema, table)


def child_generic(url: str) -> None:
    child_service("generic", url)


def refresh(source: dict, schema: str, table: str) -> None:
    from refresh.storage.filesystem import file_url_path

    client = service_client(
        Path(tempfile.mkdtemp(prefix="bench-native-")), FILE_SOURCES_DIR=str(WORK)
    )
    response = client.post("/connections", json={"name": "bench", **source})
    assert response.status_code == 201, response.get_json()
    body = {"connection_id": "bench", "schema_name": schema, "table_name": table, "data": True}
    before = _usage()
    with ChildMemory() as memory:
        response = client.post("/refresh", json=body)
    assert response.status_code == 200, response.get_json()
    after = _usage()
    path = client.get(f"/connections/bench/tables/{schema}/{table}").get_json()["current_path"]
    print(
        json.dumps(
            {
                "seconds": response.get_json()["duration_ms"] / 1000,
                "cpu_seconds": after["cpu_seconds"] - before["cpu_seconds"],
                "peak_mb": after["peak_mb"],
                "child_mb": memory.child_mb,
                "total_mb": memory.total_mb,
                "parquet": f"{file_url_path(path)}/*.parquet",
            }
        )
    )


def child_cx(return_type: str, url: str) -> None:
    """connectorx alone, timed inside its process like the service."""
    import connectorx as cx
    import pyarrow.parquet as pq

    out = Path(tempfile.mkdtemp(prefix="bench-cx-")) / "orders.parquet"
    before, started = _usage(), time.perf_counter()
    if return_type == "arrow":
        table = cx.read_sql(url, "SELECT * FROM orders", return_type="arrow")
        pq.write_table(table, out, compression="zstd")
    else:
        reader = cx.read_sql(
            url, "SELECT * FROM orders", return_type="arrow_stream", batch_size=65_536
        )
        with pq.ParquetWriter(out, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
    seconds = time.perf_counter() - started
    after = _usage()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": after["cpu_seconds"] - before["cpu_seconds"],
                "peak_mb": after["peak_mb"],
                "parquet": str(out),
            }
        )
    )


CHILDREN = {"service": child_service, "cx": child_cx, "generic": child_generic}

if __name__ == "__main__":
    main()
