"""HTTP hygiene: one error envelope for every failure, auth, health and the OpenAPI document."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from app import create_app
from config import load_settings
from refresh.api.context import JOBS
from refresh.api.error_responses import CODES
from tests.support.api import assert_error, register
from tests.support.file_sources import make_file_source
from tests.support.markers import both_catalogs


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code", "fragment"),
    [
        ("{not json", "application/json", 400, "BAD_REQUEST", "not valid JSON"),
        ("[]", "application/json", 400, "BAD_REQUEST", "must be a JSON object, got an array"),
        ('"x"', "application/json", 400, "BAD_REQUEST", "must be a JSON object, got a string"),
        ("null", "application/json", 400, "BAD_REQUEST", "must be a JSON object, got null"),
        ("", "application/json", 400, "BAD_REQUEST", "request body is empty"),
        ("{}", "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"),
        ("{}", None, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"),
    ],
)
def test_bad_bodies_answer_the_envelope(
    client: FlaskClient, data: str, content_type: str | None, status: int, code: str, fragment: str
) -> None:
    for path in ("/refresh", "/connections"):
        response = client.post(path, data=data, content_type=content_type)
        assert fragment in assert_error(response, status, code)


DEEP = 10_000


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/refresh", "[" * DEEP + "]" * DEEP),
        ("/refresh", '{"a":' * DEEP + "1" + "}" * DEEP),
        (
            "/connections",
            '{"name": "c", "source_type": "sqlite", "config": ' + "[" * DEEP + "]" * DEEP + "}",
        ),
        # Deeper than the limit, shallow enough for the parser: refused all the same.
        (
            "/connections",
            '{"name": "c", "source_type": "sqlite", "config": ' + "[" * 40 + "]" * 40 + "}",
        ),
    ],
)
def test_deeply_nested_bodies_are_400(client: FlaskClient, path: str, body: str) -> None:
    response = client.post(path, data=body, content_type="application/json")
    assert_error(response, 400, "BAD_REQUEST", "request body nests deeper than 32 levels")
    assert client.get("/connections").get_json() == {"connections": []}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/refresh", b'{"connection_id": "\\ud800"}', "connection_id"),
        ("/refresh", b'{"connection_id": "ok", "schema_name": "a\\udfffb"}', "schema_name"),
        ("/refresh", b'{"connection_id": "\xed\xa0\x80"}', "connection_id"),  # UTF-8-encoded
        ("/refresh", b'{"\\ud800": 1}', "\\ud800"),
        (
            "/connections",
            b'{"name": "c", "source_type": "sqlite", "config": {"path": "/x\\ud800"}}',
            "config.path",
        ),
        (
            "/connections",
            b'{"name": "c", "source_type": "postgres", "config": {"schemas": ["\\udc00"]}}',
            "config.schemas.0",
        ),
    ],
)
def test_lone_surrogates_are_400_naming_the_field(
    client: FlaskClient, path: str, body: bytes, field: str
) -> None:
    response = client.post(path, data=body, content_type="application/json")
    message = assert_error(response, 400, "BAD_REQUEST")
    assert message == f"{field}: not valid Unicode text (holds a lone surrogate)"
    assert client.get("/connections").get_json() == {"connections": []}


NUL_TEXT = "not valid text (holds a NUL character)"
NUL_PATH = "no such resource: the path holds a NUL character, which no name can hold"
SHOP_TABLE = {"connection_id": "shop", "schema_name": "main", "data": True}


@pytest.fixture
def shop(client: FlaskClient, tmp_path: Path) -> None:
    """Connection ``shop`` with table ``main.t``: the names around the NUL all exist."""
    make_file_source("sqlite", tmp_path / "shop.db", "CREATE TABLE t (id INTEGER)")
    register(client, "shop", "sqlite", {"path": str(tmp_path / "shop.db")})


@both_catalogs
@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    ("method", "url", "body", "status", "message"),
    [
        ("POST", "/refresh", {"connection_id": "a\x00b"}, 400, f"connection_id: {NUL_TEXT}"),
        (
            "POST",
            "/refresh",
            {"connection_id": "a\x00b", "data": True},
            400,
            f"connection_id: {NUL_TEXT}",
        ),
        (
            "POST",
            "/refresh",
            {"connection_id": "a\x00b", "data": True, "async": True},
            400,
            f"connection_id: {NUL_TEXT}",
        ),
        (
            "POST",
            "/refresh",
            {**SHOP_TABLE, "table_name": "a\x00b"},
            400,
            f"table_name: {NUL_TEXT}",
        ),
        ("POST", "/refresh", {"connection_id": "shop", "a\x00b": 1}, 400, f"a\\x00b: {NUL_TEXT}"),
        (
            "POST",
            "/connections",
            {"name": "c", "source_type": "postgres", "config": {"password": "a\x00"}},
            400,
            f"config.password: {NUL_TEXT}",
        ),
        ("GET", "/connections/a%00b", None, 404, NUL_PATH),
        ("GET", "/connections/shop/tables/main/a%00b", None, 404, NUL_PATH),
        ("DELETE", "/connections/shop/tables/main/a%00b/cache", None, 404, NUL_PATH),
        ("GET", "/refresh/jobs/a%00b", None, 404, NUL_PATH),
        ("GET", "/connections?a%00b=1", None, 400, f"query parameter a\\x00b: {NUL_TEXT}"),
        ("GET", "/connections/shop?x=a%00b", None, 400, f"query parameter x: {NUL_TEXT}"),
    ],
)
def test_a_nul_character_is_refused_before_any_look_up(
    client: FlaskClient,
    method: str,
    url: str,
    body: dict[str, object] | None,
    status: int,
    message: str,
) -> None:
    """PostgreSQL's text cannot hold NUL: looked up, it was a 500 (and a failed job with async)."""
    response = client.open(url, method=method, json=body)
    assert_error(response, status, CODES[status], message)
    assert [c["id"] for c in client.get("/connections").get_json()["connections"]] == ["shop"]


def test_a_surrogate_in_the_url_is_not_a_crash(client: FlaskClient) -> None:
    # WSGI decodes the path leniently: the bytes of a surrogate become U+FFFD, an unknown name.
    assert_error(client.get("/connections/%ED%A0%80"), 404, "NOT_FOUND")
    assert_error(client.get("/connections/%ED%A0%80/tables/s/t"), 404, "NOT_FOUND")


def test_unknown_route_and_wrong_method(client: FlaskClient) -> None:
    assert_error(client.get("/nope"), 404, "NOT_FOUND", "no such endpoint: GET /nope")
    response = client.get("/refresh")
    message = assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in message
    assert "POST" in response.headers["Allow"]
    assert_error(client.put("/connections"), 405, "METHOD_NOT_ALLOWED")


def test_body_over_one_mebibyte_is_413(client: FlaskClient) -> None:
    body = json.dumps({"name": "x" * (1024 * 1024)})
    response = client.post("/connections", data=body, content_type="application/json")
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_crash_is_500_without_traceback_or_detail(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(_rt):
        raise RuntimeError("boom with password hunter2")

    monkeypatch.setattr("refresh.refresh_request.refresh_all_schemas", explode)
    with caplog.at_level(logging.ERROR):
        response = client.post("/refresh", json={})
    message = assert_error(response, 500, "INTERNAL_SERVER_ERROR")
    assert "hunter2" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert "service log" in message
    assert "boom" in caplog.text  # the operator still gets the details


class TestToken:
    @pytest.fixture
    def environ(self, environ: dict[str, str]) -> dict[str, str]:
        return {**environ, "API_TOKEN": "s3cret-token"}

    def test_every_endpoint_but_health_needs_the_token(self, client: FlaskClient) -> None:
        response = client.get("/connections")
        assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert_error(client.post("/refresh", json={}), 401, "UNAUTHORIZED")
        assert_error(client.get("/openapi.json"), 401, "UNAUTHORIZED")
        assert_error(client.get("/nope"), 401, "UNAUTHORIZED")
        wrong = {"Authorization": "Bearer nope"}
        assert_error(client.get("/connections", headers=wrong), 401, "UNAUTHORIZED")
        assert client.get("/health").status_code == 200

    def test_right_token_passes(self, client: FlaskClient) -> None:
        headers = {"Authorization": "Bearer s3cret-token"}
        assert client.get("/connections", headers=headers).status_code == 200


def test_health_reports_each_component(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    checks = {"catalog": "ok", "storage": "ok", "redis": "ok"}
    assert response.get_json() == {"status": "ok", "checks": checks}


class TestHealthWhenDown:
    @pytest.fixture
    def environ(self, environ: dict[str, str], tmp_path) -> dict[str, str]:
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("a file where the cache root should be")
        return {**environ, "CACHE_URL": f"file://{blocker}"}

    def test_storage_down_is_503(self, client: FlaskClient) -> None:
        response = client.get("/health")
        assert response.status_code == 503
        checks = {"catalog": "ok", "storage": "unavailable", "redis": "ok"}
        assert response.get_json()["checks"] == checks


def test_health_catalog_down_is_503(environ: dict[str, str]) -> None:
    nothing_listens = "postgresql://postgres@127.0.0.1:1/catalog?connect_timeout=2"
    app = create_app(load_settings({**environ, "DATABASE_URL": nothing_listens}))
    try:
        response = app.test_client().get("/health")
    finally:
        app.extensions[JOBS].close()
    assert response.status_code == 503
    assert response.get_json()["checks"]["catalog"] == "unavailable"


def test_openapi_describes_every_endpoint(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert set(paths["/connections"]) == {"get", "post"}
    assert set(paths["/connections/{connection_id}"]) == {"get", "delete"}
    assert "get" in paths["/connections/{connection_id}/tables/{schema_name}/{table_name}"]
    assert set(paths["/refresh/jobs/{job_id}"]) == {"get"}
    table = "/connections/{connection_id}/tables/{schema_name}/{table_name}"
    assert set(paths[f"{table}/settings"]) == {"get", "put"}
    assert set(paths["/connections/{connection_id}/schedule"]) == {"get", "put", "delete"}
    assert set(paths["/metrics"]) == {"get"}
    listing = paths["/connections/{connection_id}/tables"]["get"]
    assert {p["name"] for p in listing["parameters"] if p["in"] == "query"} == {"stale"}
    refresh = paths["/refresh"]["post"]
    request_schema = refresh["requestBody"]["content"]["application/json"]["schema"]
    name = request_schema["$ref"].rsplit("/", 1)[1]
    properties = spec["components"]["schemas"][name]["properties"]
    assert set(properties) == {
        "connection_id",
        "schema_name",
        "table_name",
        "data",
        "include_uncached",
        "if_changed",
        "force",
        "full",
        "async",
    }
    assert "502" in refresh["responses"]
