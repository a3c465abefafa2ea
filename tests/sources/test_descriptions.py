"""A refresh describes the few tables it is about to read (``discover(only=...)``): each source
must say of them exactly what its discovery of the whole database says, and leave out a table
that is gone."""

from __future__ import annotations

import pytest

from tests.support.source_kinds import SourceKind


@pytest.mark.parametrize(
    "kind", ["postgres", "mysql", "sqlite", "duckdb", "sqlalchemy"], indirect=True
)
def test_describing_some_tables_says_what_discovery_says_of_them(kind: SourceKind) -> None:
    q = kind.quote
    kind.execute(
        f"CREATE TABLE {q('keyed')} ({q('a')} INTEGER NOT NULL, {q('b')} VARCHAR(10) NOT NULL, "
        f"{q('c')} INTEGER, {q('d')} DECIMAL(12, 2), PRIMARY KEY ({q('b')}, {q('a')}))",
        f"CREATE TABLE {q('odd.Name x')} ({q('x y')} INTEGER, {q('Z')} VARCHAR(5))",
        f"CREATE TABLE {q('other')} ({q('n')} INTEGER)",
        f"CREATE VIEW {q('view')} AS SELECT {q('a')}, {q('d')} FROM {q('keyed')}",
    )
    wanted = [(kind.schema, name) for name in ["view", "odd.Name x", "keyed"]]

    discovered = {t.key: t for t in kind.source().discover()}
    described = kind.source().discover(only=wanted)
    with_one_gone = kind.source().discover(only=[*wanted, (kind.schema, "gone")])

    assert {t.key: t for t in described} == {key: discovered[key] for key in wanted}
    assert {t.key: t for t in with_one_gone} == {key: discovered[key] for key in wanted}
