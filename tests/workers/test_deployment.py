"""The deployment shape: web and two workers as separate processes (the Procfile's commands)
sharing nothing but Redis, a PostgreSQL catalog and an S3 cache."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from refresh.runtime import Runtime
from tests.support.backends import Backend
from tests.support.services import Database, PostgresServer
from tests.support.web import get, post, run_gunicorn
from tests.support.workers import StartWorkers

TABLES = {"orders": 5000, "customers": 300, "products": 40}


@pytest.fixture
def web(rt: Runtime, environ: dict[str, str], tmp_path: Path) -> Iterator[int]:
    """gunicorn on the catalog the ``rt`` fixture migrated; yields its port."""
    with run_gunicorn(environ, tmp_path / "web.log") as port:
        yield port


def answer(port: int, path: str) -> dict[str, Any]:
    response = get(port, path)
    assert response.status == 200, response.body
    return json.loads(response.body)


@pytest.mark.parametrize("catalog_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("cache", ["s3"], indirect=True)
def test_web_and_two_workers_share_only_redis_the_catalog_and_s3(
    web: int,
    workers: StartWorkers,
    cache: Backend,
    postgres: PostgresServer,
    pg_source: Database,
) -> None:
    with postgres.connect(pg_source) as conn:
        for name, rows in TABLES.items():
            conn.execute(f"CREATE TABLE {name} (id bigint, label text)")
            conn.execute(
                f"INSERT INTO {name} SELECT g, 'row ' || g FROM generate_series(1, {rows}) g"
            )
    registered = post(
        web,
        "/connections",
        {"name": "shop", "source_type": "postgres", "config": pg_source.config()},
    )
    assert registered.status == 201, registered.body

    with workers(2):
        accepted = post(
            web, "/refresh", {"connection_id": "shop", "data": True, "include_uncached": True}
        )
        assert accepted.status == 202, accepted.body
        status_url = json.loads(accepted.body)["status_url"]
        deadline = time.monotonic() + 120
        while (job := answer(web, status_url))["status"] not in ("finished", "failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.1)

    assert job["status"] == "finished", job
    assert job["result"]["tables_refreshed"] == 3
    assert job["result"]["total_rows"] == sum(TABLES.values())
    for name, rows in TABLES.items():
        info = answer(web, f"/connections/shop/tables/public/{name}")
        assert info["current_path"].startswith("s3://")
        copy = cache.read(info["current_path"])
        assert copy.num_rows == rows
        assert sorted(copy.column("id").to_pylist()) == list(range(1, rows + 1))
