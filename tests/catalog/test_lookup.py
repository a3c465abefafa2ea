"""The lookups a refresh starts with, on both catalogs, for as many tables as a batch may hold."""

from __future__ import annotations

from sqlalchemy import select

from refresh.catalog import Catalog, Connection, Table, TableSettings
from refresh.lookup import load_settings, load_tables
from tests.support.markers import both_catalogs

pytestmark = both_catalogs

# A batch of a connection of tens of thousands of small tables (or ``flask refresh run``) asks
# for this many at once; PostgreSQL refused such a list of names in one query.
MANY = 12_000


def test_thousands_of_tables_are_looked_up_at_once(catalog: Catalog) -> None:
    present = [("public", "t00001"), ("other", "t05000"), ("public", f"t{MANY - 1:05d}")]
    with catalog.session() as session:
        session.add(Connection(id="c1", source_type="sqlite", config={"path": "/x.db"}))
        session.add_all(
            Table(
                connection_id="c1",
                schema_name=schema,
                table_name=name,
                arrow_schema={"columns": []},
                schema_hash="0" * 64,
            )
            for schema, name in present
        )
        session.flush()
        ids = session.scalars(select(Table.id).order_by(Table.id)).all()
        session.add(TableSettings(table_id=ids[1], hold_below_ratio=0.5))
    asked = [("public", f"t{number:05d}") for number in range(MANY)] + [("other", "t05000")]

    with catalog.session() as session:
        found = load_tables(session, "c1", asked)
        assert sorted(found) == sorted(present)
        assert found[present[1]].id == ids[1]
        settings = load_settings(session, [*range(ids[-1] + 1, ids[-1] + MANY), *ids])
        assert {table_id: row.hold_below_ratio for table_id, row in settings.items()} == {
            ids[1]: 0.5
        }
