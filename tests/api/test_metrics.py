"""``GET /metrics``: Prometheus text computed from the catalog and the job queue at scrape time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from refresh.catalog import PendingDeletion, utcnow
from refresh.runtime import Runtime
from tests.support.api import assert_error, submit, wait_for_job
from tests.support.deletions import add_table, add_versions, queue
from tests.support.freshness import set_table, sqlite_source
from tests.support.markers import both_catalogs
from tests.support.metrics import scrape


def table(name: str, **extra: str) -> frozenset[tuple[str, str]]:
    return frozenset({"connection": "src", "schema": "main", "table": name, **extra}.items())


@both_catalogs
def test_the_figures_of_known_catalog_states(
    client: FlaskClient, rt: Runtime, tmp_path: Path
) -> None:
    sqlite_source(client, tmp_path / "src.sqlite", tables=("a", "b"))
    succeeded = utcnow() - timedelta(seconds=30)
    set_table(
        rt,
        "src",
        "a",
        current_version="v1",
        current_path="file:///cache/src/main/a/v1",
        row_count=3,
        size_bytes=1234,
        last_success_at=succeeded,
        refreshes_published=2,
        refreshes_unchanged=5,
        refreshes_held=1,
    )
    set_table(rt, "src", "b", consecutive_failures=3, refreshes_failed=3)
    client.put("/connections/src/tables/main/b/settings", json={"max_staleness_seconds": 60})
    queue(rt, ["file:///cache/x/1", "file:///cache/x/2"], delete_after=utcnow())
    with rt.catalog.session() as session:
        session.execute(
            update(PendingDeletion)
            .where(PendingDeletion.path == "file:///cache/x/2")
            .values(retry_count=1)
        )
    add_versions(rt, add_table(rt), ["file:///cache/c/s/t/v0"], "deletion_failed")

    samples = scrape(client)

    assert samples["refresh_table_last_success_timestamp_seconds", table("a")] == pytest.approx(
        succeeded.timestamp()
    )
    assert ("refresh_table_last_success_timestamp_seconds", table("b")) not in samples
    assert samples["refresh_table_rows", table("a")] == 3
    assert samples["refresh_table_bytes", table("a")] == 1234
    assert ("refresh_table_rows", table("b")) not in samples  # never cached
    assert samples["refresh_table_consecutive_failures", table("a")] == 0
    assert samples["refresh_table_consecutive_failures", table("b")] == 3
    assert samples["refresh_table_stale", table("b")] == 1
    assert ("refresh_table_stale", table("a")) not in samples  # no bound set
    outcomes = {
        (name, outcome): samples["refresh_table_refreshes_total", table(name, outcome=outcome)]
        for name in ("a", "b")
        for outcome in ("published", "unchanged", "held", "failed")
    }
    assert outcomes == {
        ("a", "published"): 2,
        ("a", "unchanged"): 5,
        ("a", "held"): 1,
        ("a", "failed"): 0,
        ("b", "published"): 0,
        ("b", "unchanged"): 0,
        ("b", "held"): 0,
        ("b", "failed"): 3,
    }
    assert samples["refresh_pending_deletions", frozenset()] == 2
    assert samples["refresh_pending_deletions_retrying", frozenset()] == 1
    assert samples["refresh_abandoned_deletions", frozenset()] == 1
    assert samples["refresh_job_queue_up", frozenset()] == 1


def test_jobs_per_queue_and_state(client: FlaskClient, tmp_path: Path) -> None:
    sqlite_source(client, tmp_path / "src.sqlite")
    job_id = submit(client, {"connection_id": "src", "async": True})
    assert wait_for_job(client, job_id)["status"] == "finished"

    samples = scrape(client)

    jobs = {
        (dict(labels)["queue"], dict(labels)["state"]): value
        for (name, labels), value in samples.items()
        if name == "refresh_jobs"
    }
    assert jobs["refresh", "finished"] == 1
    assert jobs["refresh", "queued"] == 0
    assert jobs["refresh", "failed"] == 0
    assert {queue for queue, _ in jobs} == {"refresh", "maintenance"}


class TestToken:
    @pytest.fixture
    def environ(self, environ: dict[str, str]) -> dict[str, str]:
        return {**environ, "API_TOKEN": "s3cret-token"}

    def test_metrics_need_the_token(self, client: FlaskClient) -> None:
        assert_error(client.get("/metrics"), 401, "UNAUTHORIZED")
        samples = scrape(client, Authorization="Bearer s3cret-token")
        assert samples["refresh_pending_deletions", frozenset()] == 0
