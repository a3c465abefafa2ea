"""A table's own change check (``check_sql``): what it may be, and the fingerprint its row gives.

A check is SQL from a request, run at the source before every refresh of the table that asks
whether anything changed, so it is validated without running it: parsed (sqlglot, in the
source's dialect) and accepted only as

- exactly one statement, a plain ``SELECT`` (no ``UNION``, no ``SELECT ... INTO``, no
  ``FOR UPDATE``/``FOR SHARE``, no data-modifying statement anywhere inside, e.g. a PostgreSQL
  CTE that deletes);
- that returns one row by its shape: no ``GROUP BY`` and no window function at its top level,
  and either no ``FROM``, an aggregate (``count``, ``max``, ``sum``, ``string_agg``...) among its
  top-level columns, or ``LIMIT 1``.

Anything else is a 400 naming ``check_sql``. The shape cannot prove everything (a function may
still have side effects, a ``WHERE`` may leave no row), so a check also runs in a read-only
transaction where the source has one, under the source's stall bound, and a result that is not
exactly one row fails the refresh (``Source.run_check``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import sqlglot
from sqlglot import exp

from refresh.common.errors import InvalidRequest

# sqlglot's dialect of each source type; a SQLAlchemy URL may be anything, so generic SQL.
_DIALECTS = {"postgres": "postgres", "mysql": "mysql", "sqlite": "sqlite", "duckdb": "duckdb"}
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter)
# Versioned, so that a change of how rows are hashed reads as "changed", never as "unchanged".
_PREFIX = "sql1:"


def validate_check_sql(sql: str, source_type: str) -> str:
    """``sql`` if it is a check this service runs (see the module docstring), else
    ``InvalidRequest`` saying why, naming the field."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=_DIALECTS.get(source_type)) if s]
    except sqlglot.errors.SqlglotError as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise _invalid(f"cannot be parsed as SQL ({first})") from None
    if len(statements) != 1:
        raise _invalid("must be exactly one statement")
    [tree] = statements
    if not isinstance(tree, exp.Select):
        raise _invalid("must be a SELECT")
    if any(isinstance(node, _WRITES) for node in tree.walk()):
        raise _invalid("must only read: it contains a statement that writes")
    if tree.args.get("into") is not None:
        raise _invalid("must only read: SELECT ... INTO creates a table")
    if tree.args.get("locks"):
        raise _invalid("must only read: FOR UPDATE / FOR SHARE lock rows")
    if not _one_row(tree):
        raise _invalid(
            "must return one row: aggregate the table (e.g. select max(updated_at), count(*) "
            "from ...), or end with LIMIT 1; no GROUP BY, no window functions"
        )
    return sql


def check_fingerprint(sql: str, row: Sequence[object]) -> str:
    """The fingerprint a check's row gives: a hash of the SQL and the row's values.

    The SQL is part of it, so a changed ``check_sql`` never matches a fingerprint recorded by the
    previous one (nor a source's own fingerprint); the catalog keeps a hash, not the values.
    """
    values = [[type(value).__name__, str(value)] for value in row]
    digest = hashlib.sha256(json.dumps([sql, values]).encode()).hexdigest()
    return _PREFIX + digest


def _one_row(tree: exp.Select) -> bool:
    if tree.args.get("group") is not None:
        return False
    columns = [node for column in tree.expressions for node in _top_level(column)]
    if any(isinstance(node, exp.Window) for node in columns):
        return False
    if tree.args.get("from_") is None:
        return True
    if any(isinstance(node, exp.AggFunc) for node in columns):
        return True
    limit = tree.args.get("limit")
    return limit is not None and limit.expression is not None and limit.expression.sql() == "1"


def _top_level(column: exp.Expression) -> list[exp.Expression]:
    """The nodes of a select-list item, without those of subqueries inside it."""
    return list(column.walk(prune=lambda node: isinstance(node, exp.Select)))


def _invalid(why: str) -> InvalidRequest:
    return InvalidRequest(f"check_sql: {why}")
