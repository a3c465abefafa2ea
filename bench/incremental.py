"""What an incremental refresh costs beside a full one: append and merge of new rows.

    python -m bench.incremental [--rows 5000000] [--new 10000] [--rounds 3] [--keep]
                                [--cache-url s3://bucket/prefix]

On the reference ``orders`` table (bench/orders.sql) in PostgreSQL, with the embedded defaults in
this process: three connections to it, refreshed ``full``, ``append`` and ``merge`` (cursor
``id``, merge key ``id``). After their first (full) refreshes, each round inserts ``--new`` rows
(the next ids) and times the three refreshes, interleaved; medians printed with each one's share
of the full refresh, the slowest round (the first incremental refresh after a full one reads the
boundary rows from the full version's last file), the rows it read from the source, and the
memory a refresh of the mode took: this process's peak RSS during it (the peak reset before each
refresh), and that peak above the RSS it had before, the largest of the rounds.
``--cache-url`` puts the cache on S3 (``S3_ENDPOINT_URL`` and the ``AWS_*`` variables as the
service reads them); the default is a temporary directory. The rows added are deleted at the
end, so ``--keep`` leaves ``orders`` as orders.sql made it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PG,
    ensure_orders,
    psql,
    reset_peak_rss,
    scratch_database,
    service_client,
    status_mb,
)

MODES = {
    "full": {"refresh_mode": "full"},
    "append": {"refresh_mode": "append", "cursor_column": "id"},
    "merge": {"refresh_mode": "merge", "cursor_column": "id", "primary_key": ["id"]},
}
# New rows as orders.sql makes them (its columns, plausible values).
INSERT = """
INSERT INTO orders
SELECT g, 1 + g % 100000, now(), round((g % 20000)::numeric, 2), 'new', md5(g::text), g % 2 = 0,
       g / 7.0
FROM generate_series((SELECT max(id) + 1 FROM orders), (SELECT max(id) + :new FROM orders)) g
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the source table")
    parser.add_argument("--cache-url", help="CACHE_URL (default: a temporary directory)")
    args = parser.parse_args()

    with (
        scratch_database(f"rs_bench_orders_{args.rows}", keep=args.keep) as source,
        tempfile.TemporaryDirectory(prefix="bench-incremental-") as work,
    ):
        ensure_orders(source, args.rows)
        client = service_client(Path(work), cache_url=args.cache_url)
        try:
            times, rows, memory = run(client, source, args)
        finally:
            psql(source, "-c", f"DELETE FROM orders WHERE id > {args.rows}")
    full = statistics.median(times["full"])
    cache = args.cache_url or "a local directory"
    print(f"orders, {args.rows:,} rows + {args.new:,} new per round, cache on {cache}")
    print(f"medians of {args.rounds} interleaved rounds")
    print(
        f"{'refresh':8} {'seconds':>8} {'vs full':>8} {'slowest':>8} {'rows read':>11} "
        f"{'peak RSS':>9} {'growth':>7}"
    )
    for mode, seconds in times.items():
        median = statistics.median(seconds)
        slowest = max(seconds)
        print(
            f"{mode:8} {median:>8.3f} {median / full:>7.1%} {slowest:>8.3f} {rows[mode]:>11,} "
            f"{memory[mode][0]:>6.0f} MB {memory[mode][1]:>4.0f} MB"
        )


def run(
    client: Any, source: str, args: argparse.Namespace
) -> tuple[dict[str, list[float]], dict[str, int], dict[str, tuple[float, float]]]:
    for mode, settings in MODES.items():
        config = {**PG, "database": source}
        body = {"name": mode, "source_type": "postgres", "config": config}
        assert client.post("/connections", json=body).status_code == 201
        url = f"/connections/{mode}/tables/public/orders/settings"
        answer = client.put(url, json=settings)
        assert answer.status_code == 200, answer.get_json()
        refresh(client, mode)  # the first one is full
    times: dict[str, list[float]] = {}
    rows: dict[str, int] = {}
    memory: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        psql(source, "-c", INSERT.replace(":new", str(args.new)))
        psql(source, "-c", "VACUUM ANALYZE orders")
        for mode in ("append", "merge", "full"):
            before = status_mb("self", "VmRSS")
            reset_peak_rss()
            seconds, answer = refresh(client, mode)
            peak = status_mb("self", "VmHWM")
            largest = memory.get(mode, (0.0, 0.0))
            memory[mode] = (max(largest[0], peak), max(largest[1], peak - before))
            if answer["refresh_mode"] != mode:
                raise SystemExit(f"{mode}: the refresh was {answer['refresh_mode']}: {answer}")
            times.setdefault(mode, []).append(seconds)
            rows[mode] = answer["rows_synced"]
    return times, rows, memory


def refresh(client: Any, connection: str) -> tuple[float, dict[str, Any]]:
    body = {"connection_id": connection, "schema_name": "public", "table_name": "orders"}
    started = time.perf_counter()
    response = client.post("/refresh", json={**body, "data": True})
    seconds = time.perf_counter() - started
    answer = response.get_json()
    assert response.status_code == 200, answer
    return seconds, answer


if __name__ == "__main__":
    main()
