"""Property-based fuzzing of the API through the Flask test client.

Whatever the body, headers or URL, the answer is a success or an error in the envelope with a
documented status: 4xx, 502 for a source that cannot be reached;
never a 500, never a traceback. On both catalogs: what one database takes and another refuses (a
NUL character in PostgreSQL's text) must not be a 500 on either. Examples are derived from the
test (derandomized) and bounded, so every run checks the same inputs in a few seconds. Sources
are only ever reached on 127.0.0.1 (or fail before any network access): no generated host name
is looked up in DNS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from refresh.api.error_responses import CODES
from refresh.sources import SOURCE_TYPES
from tests.support.api import register
from tests.support.file_sources import make_file_source
from tests.support.markers import both_catalogs

pytestmark = both_catalogs

FUZZ = settings(
    derandomize=True,
    database=None,
    max_examples=300,
    deadline=None,
    # One app and catalog for all examples of a test: what earlier examples registered is part
    # of the input of later ones.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DOCUMENTED_5XX = {502}

# Any code point, lone surrogates included, plus the characters that break naive code.
TEXT = st.text(
    st.characters(exclude_categories=())
    | st.sampled_from(["\ud800", "\udfff", "\x00", ".", "/", "%", "~", "\n", "é", "中"]),
    max_size=12,
) | st.sampled_from(["", "x" * 300, "é" * 100, "..", "../x", "a\n"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
NOT_TEXT = st.none() | st.booleans() | st.integers() | st.lists(JSON, max_size=2)


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``common`` three times out of four: enough well-formed input reaches the deep paths."""
    return st.integers(0, 3).flatmap(lambda n: rare if n == 3 else common)


def maybe(values: list[Any], other: st.SearchStrategy[Any] = JSON) -> st.SearchStrategy[Any]:
    return mostly(st.sampled_from(values), other)


def with_extra(fields: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly ``fields``; else with a few unknown fields too, or any JSON object."""
    extra = st.dictionaries(TEXT, JSON, max_size=2)
    mixed = st.tuples(extra, fields).map(lambda parts: {**parts[0], **parts[1]})
    return mostly(fields, mixed | st.dictionaries(TEXT, JSON, max_size=4))


# Hosts that are 127.0.0.1, fail before any look-up (a DNS label over 63 characters, a surrogate)
# or are not host names at all.
HOSTS = maybe(["127.0.0.1", f"{'a' * 64}.example.com", "a\ud800"], NOT_TEXT)
PORTS = maybe([1, 5432, 3306], st.sampled_from([0, 70000, "5432", True]) | NOT_TEXT)
URLS = maybe(
    [
        "sqlite:///lite.db",
        "sqlite:////etc/passwd",
        "sqlite:///file:/etc/passwd?uri=true",
        "postgresql+psycopg://u:pw@127.0.0.1:1/d",
        "mysql+pymysql://root@127.0.0.1:3306/nosuch",
        "nosuch://x",
    ],
    TEXT | NOT_TEXT,
)
SERVER_CONFIGS = st.fixed_dictionaries(
    {
        "host": HOSTS,
        "user": maybe(["postgres", "root"]),
        "database": maybe(["postgres", "nosuch"]),
    },
    optional={"port": PORTS, "password": JSON, "schemas": maybe([["public"], [], [""]])},
)
FILE_CONFIGS = st.fixed_dictionaries(
    {"path": maybe(["lite.db", "nosuch.db", "/etc/passwd", "../x", "."], TEXT | NOT_TEXT)}
)
URL_CONFIGS = st.fixed_dictionaries({"url": URLS}, optional={"schemas": maybe([["main"], []])})
# Mostly a config that suits the source type; else any pairing.
TYPED_CONFIGS = mostly(
    st.one_of(
        st.tuples(st.sampled_from(["postgres", "mysql"]), with_extra(SERVER_CONFIGS)),
        st.tuples(st.sampled_from(["sqlite", "duckdb"]), with_extra(FILE_CONFIGS)),
        st.tuples(st.just("sqlalchemy"), with_extra(URL_CONFIGS)),
    ),
    st.tuples(
        maybe(list(SOURCE_TYPES)),
        st.one_of(SERVER_CONFIGS, FILE_CONFIGS, URL_CONFIGS, JSON),
    ),
)
NAMES = mostly(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,8}", fullmatch=True),
    st.sampled_from(["lite", "nl\n", "x" * 65, "_x", ""]) | JSON,
)
CONNECTION_BODIES = with_extra(
    st.builds(
        lambda name, typed, skip: (
            {"name": name, "source_type": typed[0], "config": typed[1]} | skip
        ),
        NAMES,
        TYPED_CONFIGS,
        st.fixed_dictionaries({}, optional={"skip_discovery": maybe([True, False])}),
    )
)
REFRESH_BODIES = with_extra(
    st.fixed_dictionaries(
        {},
        optional={
            "connection_id": maybe(["lite", "nope"]),
            "schema_name": maybe(["main", "public"]),
            "table_name": maybe(["t", "nope"]),
            "data": maybe([True, False]),
            "include_uncached": maybe([True, False]),
            "async": maybe([True, False]),
        },
    )
)


def encoded(bodies: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """The body as sent: mostly ``bodies`` as JSON (a surrogate as a ``\\ud800`` escape).

    Else any JSON value, any bytes, or arrays nested up to 20,000 deep.
    """
    as_json = bodies.map(lambda body: json.dumps(body).encode())
    deep = st.integers(1, 20_000).map(lambda n: ("[" * n + "]" * n).encode())
    others = JSON.map(lambda body: json.dumps(body).encode()) | st.binary(max_size=40) | deep
    return mostly(as_json, others)


HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30)
JSON_TYPES = st.sampled_from(["application/json", "application/json; charset=utf-8"])
OTHER_TYPES = st.sampled_from(["text/plain", "multipart/form-data; boundary=x"]) | HEADER_TEXT
CONTENT_TYPES = mostly(JSON_TYPES, OTHER_TYPES)
HEADERS = st.fixed_dictionaries(
    {"Content-Type": CONTENT_TYPES},
    optional={"Authorization": HEADER_TEXT, "Accept": HEADER_TEXT, "X-Anything": HEADER_TEXT},
)
SEGMENTS = TEXT.filter(bool).map(lambda s: quote(s.encode("utf-8", "surrogatepass"), safe=""))
PATHS = st.one_of(
    st.sampled_from(["/", "/connections", "/refresh", "/health", "/openapi.json", "/rq"]),
    st.builds("/connections/{}".format, SEGMENTS),
    st.builds("/connections/{}/tables".format, SEGMENTS),
    st.builds("/connections/{}/cache".format, SEGMENTS),
    st.builds("/connections/{}/tables/{}/{}".format, SEGMENTS, SEGMENTS, SEGMENTS),
    st.builds("/connections/lite/tables/main/{}/cache".format, SEGMENTS),
    st.builds("/refresh/jobs/{}".format, SEGMENTS),
    st.builds("/{}".format, SEGMENTS),
)


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    return {**environ, "SOURCE_CONNECT_TIMEOUT_SECONDS": "2"}


@pytest.fixture
def lite(client: FlaskClient, tmp_path: Path) -> None:
    """A SQLite connection with one table, so that fuzzed refreshes can also succeed."""
    make_file_source(
        "sqlite",
        tmp_path / "lite.db",
        "CREATE TABLE t (id INTEGER, body TEXT)",
        "INSERT INTO t VALUES (1, 'x')",
    )
    register(client, "lite", "sqlite", {"path": str(tmp_path / "lite.db")})


def assert_documented(response: TestResponse) -> None:
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    status = response.status_code
    assert status < 500 or status in DOCUMENTED_5XX, text
    if status == 204:
        assert text == ""
        return
    if status == 308:
        # werkzeug's routing redirects /rq to /rq/ and merges doubled slashes (a %2F decoded).
        assert response.headers["Location"]
        return
    body = json.loads(text)
    if status >= 400:
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"message", "code"}, body
        assert body["error"]["code"] == CODES[status]
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["message"]


@pytest.mark.usefixtures("lite")
@FUZZ
@given(body=encoded(CONNECTION_BODIES), headers=HEADERS)
def test_post_connections(client: FlaskClient, body: bytes, headers: dict[str, str]) -> None:
    assert_documented(client.post("/connections", data=body, headers=headers))


@pytest.mark.usefixtures("lite")
@FUZZ
@given(body=encoded(REFRESH_BODIES), headers=HEADERS)
def test_post_refresh(client: FlaskClient, body: bytes, headers: dict[str, str]) -> None:
    assert_documented(client.post("/refresh", data=body, headers=headers))


@pytest.mark.usefixtures("lite")
@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]),
    path=PATHS,
    body=st.none() | encoded(REFRESH_BODIES),
    headers=HEADERS,
)
def test_any_path(
    client: FlaskClient, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> None:
    response = client.open(path, method=method, data=body, headers=headers)
    if method == "HEAD" or (method == "OPTIONS" and response.status_code == 200):
        assert response.status_code < 500
        return
    assert_documented(response)
