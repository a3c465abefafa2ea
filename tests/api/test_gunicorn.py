"""What gunicorn itself does with the service's gunicorn.conf.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.web import exchange, run_gunicorn


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HOME of the server and its $XDG_RUNTIME_DIR: where gunicorn would put a control socket."""
    home = tmp_path_factory.mktemp("gunicorn")
    (home / "run").mkdir()
    return home


@pytest.fixture(scope="module")
def port(home: Path) -> Iterator[int]:
    environ = {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "DATABASE_URL": f"sqlite:///{home}/catalog.db",
        "CACHE_URL": (home / "cache").as_uri(),
        "FILE_SOURCES_DIR": str(home),
        "SECRET_KEY": "test-secret-key",
    }
    with run_gunicorn(environ, home / "gunicorn.log") as port:
        yield port


LONG_URL = "/connections/" + "x" * 5000  # gunicorn's request line limit is 4094 bytes


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (f"GET {LONG_URL} HTTP/1.1\r\nHost: t\r\n\r\n".encode(), 414, "URI_TOO_LONG"),
        (
            b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n",
            431,
            "REQUEST_HEADER_FIELDS_TOO_LARGE",
        ),
        (b"NOT AN HTTP REQUEST\r\n\r\n", 400, "BAD_REQUEST"),
        (b"GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 404, "NOT_FOUND"),
    ],
    ids=["uri-too-long", "header-too-large", "not-http", "unknown-route"],
)
def test_every_answer_is_the_json_envelope(
    port: int, request_bytes: bytes, status: int, code: str
) -> None:
    answer = exchange(port, request_bytes)

    assert answer.status == status, answer.body
    assert answer.content_type == "application/json"
    body = json.loads(answer.body)
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_no_control_socket_for_a_second_instance_to_take_over(port: int, home: Path) -> None:
    # gunicorn's default control socket is $XDG_RUNTIME_DIR/gunicorn.ctl (or ~/.gunicorn/): one
    # path per user, which the next instance on the machine would take over and then unlink.
    assert exchange(port, b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n").status == 200
    assert list((home / "run").iterdir()) == []
    assert not (home / ".gunicorn").exists()
