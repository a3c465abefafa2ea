"""The change check's two ends (``refresh.change_checks``): fingerprints taken now, from the
source or a table's ``check_sql``, and the one recorded with the current version."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import update

from refresh.catalog import TableVersion
from refresh.change_checks import recorded_fingerprints, take_fingerprints, unchanged
from refresh.lookup import load_connection, load_table, open_source
from refresh.runtime import Runtime
from tests.support.api import refresh
from tests.support.file_sources import make_file_source
from tests.support.freshness import sqlite_source
from tests.support.workers import wait_until


def test_a_check_sql_fingerprint_follows_its_row(
    client: FlaskClient, rt: Runtime, tmp_path: Path
) -> None:
    path = tmp_path / "src.sqlite"
    sqlite_source(client, path, tables=("a", "b"))
    with rt.catalog.session() as session:
        source = open_source(rt, load_connection(session, "src"))
    check = "select count(*), max(id) from main.a"
    checks = {("main", "a"): check, ("main", "b"): None}

    first = take_fingerprints(rt, source, checks)
    again = take_fingerprints(rt, source, checks)
    assert first["main", "a"] == again["main", "a"]
    assert first["main", "a"] is not None
    assert (
        first["main", "a"]
        != take_fingerprints(rt, source, {("main", "a"): check + " "})["main", "a"]
    )  # another check never matches a fingerprint of the previous one
    wait_until(
        lambda: take_fingerprints(rt, source, checks)["main", "b"] is not None,
        30,
        "the file's fingerprint never settled",
    )

    make_file_source("sqlite", path, "INSERT INTO a VALUES (4)")

    assert take_fingerprints(rt, source, checks)["main", "a"] != first["main", "a"]


def test_the_recorded_fingerprint_is_the_current_versions(
    client: FlaskClient, rt: Runtime, tmp_path: Path
) -> None:
    sqlite_source(client, tmp_path / "src.sqlite", tables=("a", "b"))
    refresh(client, "src", "main", "a")
    with rt.catalog.session() as session:
        a = load_table(session, "src", "main", "a")
        b = load_table(session, "src", "main", "b")
        session.execute(
            update(TableVersion)
            .where(TableVersion.table_id == a.id)
            .values(fingerprint="pg1:recorded")
        )
    with rt.catalog.session() as session:
        recorded = recorded_fingerprints(session, [a.id, b.id])

    assert recorded == {a.id: "pg1:recorded", b.id: None}
    assert unchanged(recorded[a.id], "pg1:recorded")
    assert not unchanged(recorded[a.id], "pg1:other")
    assert not unchanged(recorded[b.id], None)
