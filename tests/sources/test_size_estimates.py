"""What each source says of its tables' sizes (``Source.size_estimates``), which a
connection-wide refresh plans its batches with before a table has a version of its own."""

from __future__ import annotations

import pytest

from tests.support.source_kinds import SourceKind

ROWS = 50_000


@pytest.mark.parametrize("kind", ["postgres", "mysql"], indirect=True)
def test_a_server_gives_the_size_of_an_analysed_table_and_none_for_a_view(
    kind: SourceKind,
) -> None:
    kind.integers("t", ROWS)
    kind.execute(f"CREATE VIEW {kind.quote('v')} AS SELECT * FROM {kind.quote('t')}")
    kind.execute(f"ANALYZE {'' if kind.schema == 'public' else 'TABLE '}{kind.quote('t')}")
    tables = [(kind.schema, "t"), (kind.schema, "v"), (kind.schema, "missing")]

    sizes = kind.source().size_estimates(tables)

    size = sizes[kind.schema, "t"]
    assert size is not None
    assert ROWS * 4 <= size <= ROWS * 200  # 4-byte integers, each row's overhead
    assert sizes[kind.schema, "v"] is None
    assert sizes[kind.schema, "missing"] is None


@pytest.mark.parametrize("kind", ["postgres"], indirect=True)
def test_a_table_never_analysed_has_no_size(kind: SourceKind) -> None:
    kind.execute(f"CREATE TABLE {kind.quote('t')} (id INTEGER)")

    assert kind.source().size_estimates([(kind.schema, "t")]) == {(kind.schema, "t"): None}


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "sqlalchemy"], indirect=True)
def test_a_file_source_gives_no_size(kind: SourceKind) -> None:
    kind.integers("t", ROWS)

    assert kind.source().size_estimates([(kind.schema, "t")]) == {(kind.schema, "t"): None}
