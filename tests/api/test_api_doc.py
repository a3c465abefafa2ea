"""docs/api.md, the HTTP contract, against the service: nothing missing, nothing stale.

The OpenAPI document (generated from the schemas the endpoints use) lists every endpoint, its
status codes and every field of every schema; docs/api.md must list exactly those, each schema
as a ``#### `Name``` heading followed by its table of fields. Its validation messages must be
the API's, in the API's order.
"""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from tests.support.api import post_connection
from tests.support.paths import ROOT

DOC = (ROOT / "docs" / "api.md").read_text()
_ROW = re.compile(r"\| `([^`]+)` \|")


def section(title: str) -> str:
    """The text of the ``## {title}`` or ``### {title}`` section, up to the next heading of any
    level."""
    match = re.search(rf"^#{{2,3}} {re.escape(title)}\n(.*?)(?=^#|\Z)", DOC, re.M | re.S)
    assert match, f"docs/api.md has no section {title!r}"
    return match[1]


def documented_schemas() -> dict[str, list[str]]:
    """Each ``#### `Name``` heading, and the fields of the first ``| field |`` table under it."""
    schemas = {}
    for name, body in re.findall(r"^#### `(\w+)`\n(.*?)(?=^#|\Z)", DOC, re.M | re.S):
        lines = body.splitlines()
        header = next(n for n, line in enumerate(lines) if line.startswith("| field |"))
        rows = []
        for line in lines[header + 2 :]:
            if not line.startswith("|"):
                break
            row = _ROW.match(line)
            assert row, f"docs/api.md, {name}: a row without a `field`: {line}"
            rows.append(row[1])
        schemas[name] = rows
    return schemas


@pytest.fixture
def spec(client: FlaskClient) -> dict:
    return client.get("/openapi.json").get_json()


def test_every_endpoint_is_documented_with_its_status_codes(spec: dict) -> None:
    served = {
        (method.upper(), path): sorted(operation["responses"], key=int)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }
    rows = re.findall(r"^\| `(\w+)` \| `([^`]+)` \| ([\d, ]+) \|", section("Endpoints"), re.M)
    documented = {(method, path): statuses.split(", ") for method, path, statuses in rows}

    assert documented == served


def test_every_schema_is_documented_field_for_field(spec: dict) -> None:
    served = {
        name: list(schema.get("properties", {}))
        for name, schema in spec["components"]["schemas"].items()
    }
    documented = documented_schemas()

    assert sorted(documented) == sorted(served)
    for name, fields in served.items():
        assert sorted(documented[name]) == sorted(fields), name


def test_the_validation_messages_are_the_api_s_in_its_order(client: FlaskClient) -> None:
    skipped = {"host": "127.0.0.1", "user": "u", "database": "d"}
    assert post_connection(client, "c", "postgres", skipped, skip_discovery=True).status_code == 201
    # One body per rule, in the order docs/api.md lists them.
    bodies = [
        {"schema_name": "s"},
        {"table_name": "t"},
        {"data": True},
        {"connection_id": "nope"},
        {"connection_id": "c", "schema_name": "s"},
        {"connection_id": "c", "schema_name": "s", "data": True},
        {"connection_id": "c", "schema_name": "s", "table_name": "t"},
        {"connection_id": "c", "include_uncached": True},
        {"connection_id": "c", "if_changed": True},
        {"connection_id": "c", "force": True},
        {"connection_id": "c", "full": True},
        {"connection_id": "c", "data": True, "if_changed": True, "force": True},
    ]
    rules = re.findall(r"^\d+\. .*?: (\d{3}) `(.*?)`$", section("Validation"), re.M | re.S)
    assert len(rules) == len(bodies)

    for body, (status, message) in zip(bodies, rules, strict=True):
        answer = client.post("/refresh", json=body)
        expected = " ".join(message.split()).replace("{connection_id}", "nope")
        assert (answer.status_code, answer.get_json()["error"]["message"]) == (
            int(status),
            expected,
        ), body
