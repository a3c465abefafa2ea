"""Each source's discovery finds a table's primary key, in key order: the default key of a merge
refresh (``refresh_mode: merge`` without ``primary_key``)."""

from __future__ import annotations

import pytest

from tests.support.source_kinds import SourceKind
from tests.support.sources import by_key


@pytest.mark.parametrize(
    "kind", ["postgres", "mysql", "sqlite", "duckdb", "sqlalchemy"], indirect=True
)
def test_discovery_gives_the_primary_key_in_key_order_and_none_for_others(
    kind: SourceKind,
) -> None:
    q = kind.quote
    kind.execute(
        f"CREATE TABLE {q('keyed')} ({q('a')} INTEGER NOT NULL, {q('b')} VARCHAR(10) NOT NULL, "
        f"{q('c')} INTEGER, PRIMARY KEY ({q('b')}, {q('a')}))",
        f"CREATE TABLE {q('plain')} ({q('x')} INTEGER)",
        f"CREATE VIEW {q('view')} AS SELECT * FROM {q('keyed')}",
    )

    tables = by_key(kind.source().discover())

    assert tables[kind.schema, "keyed"].primary_key == ("b", "a")
    assert tables[kind.schema, "plain"].primary_key == ()
    assert tables[kind.schema, "view"].primary_key == ()
