"""What a change check costs: an unchanged table checked and skipped, beside a full refresh of it.

    python -m bench.change_check [--rows 5000000] [--rounds 3] [--keep]

On the reference ``orders`` table (bench/orders.sql) in PostgreSQL, with the embedded defaults
in this process: a full data refresh (mode 3), then ``"if_changed": true`` refreshes that find
the table unchanged (the source's fingerprint: statistics and relation identity) and ones that
run the table's ``check_sql`` instead (``select count(*), max(id) from public.orders``, a scan
of the table), interleaved over ``--rounds``; medians printed, with each check's share of the
full refresh. Each path has a connection of its own (a refresh without ``if_changed`` records
no fingerprint, so a full refresh would make the next check read the table again); the first
``if_changed`` refresh of a table reads it (it records the fingerprint), so it is not timed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import PG, ensure_orders, scratch_database, service_client

CHECK_SQL = "select count(*), max(id) from public.orders"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the source table")
    args = parser.parse_args()

    with (
        scratch_database(f"rs_bench_orders_{args.rows}", keep=args.keep) as source,
        tempfile.TemporaryDirectory(prefix="bench-check-") as work,
    ):
        ensure_orders(source, args.rows)
        client = service_client(Path(work))
        for name, settings in (("full", {}), ("plain", {}), ("checked", {"check_sql": CHECK_SQL})):
            config = {**PG, "database": source}
            body = {"name": name, "source_type": "postgres", "config": config}
            assert client.post("/connections", json=body).status_code == 201
            url = f"/connections/{name}/tables/public/orders/settings"
            assert client.put(url, json={"check_sql": None, **settings}).status_code == 200
            refresh(client, name, if_changed=True)  # records the fingerprint
        times: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            times.setdefault("full refresh", []).append(refresh(client, "full", force=True))
            fingerprint = refresh(client, "plain", if_changed=True, expect_unchanged=True)
            times.setdefault("unchanged: source fingerprint", []).append(fingerprint)
            checked = refresh(client, "checked", if_changed=True, expect_unchanged=True)
            times.setdefault("unchanged: check_sql", []).append(checked)
    full = statistics.median(times["full refresh"])
    print(f"orders, {args.rows:,} rows; medians of {args.rounds} interleaved rounds")
    print(f"{'path':34} {'seconds':>8} {'vs full':>8}")
    for path, seconds in times.items():
        median = statistics.median(seconds)
        print(f"{path:34} {median:>8.3f} {median / full:>7.1%}")


def refresh(client: Any, connection: str, expect_unchanged: bool = False, **flags: bool) -> float:
    body = {"connection_id": connection, "schema_name": "public", "table_name": "orders"}
    started = time.perf_counter()
    response = client.post("/refresh", json={**body, "data": True, **flags})
    seconds = time.perf_counter() - started
    answer = response.get_json()
    assert response.status_code == 200, answer
    if expect_unchanged and not answer.get("unchanged"):
        raise SystemExit(f"{connection}: the check did not find the table unchanged: {answer}")
    return seconds


if __name__ == "__main__":
    main()
