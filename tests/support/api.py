"""Calls to the service's API that many tests make, with the checks every caller wants."""

from __future__ import annotations

import time
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse


def assert_error(response: TestResponse, status: int, code: str, message: str | None = None) -> str:
    """The response is the error envelope with this status and code; returns its message."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    if message is not None:
        assert body["error"]["message"] == message
    return body["error"]["message"]


def post_connection(
    client: FlaskClient, name: str, source_type: str, config: dict[str, Any], **extra: Any
) -> TestResponse:
    body = {"name": name, "source_type": source_type, "config": config, **extra}
    return client.post("/connections", json=body)


def register(client: FlaskClient, name: str, source_type: str, config: dict[str, Any]) -> None:
    """Register a connection whose tables must be discovered successfully."""
    response = post_connection(client, name, source_type, config)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["discovery_status"] == "success", response.get_json()


def refresh(client: FlaskClient, connection: str, schema: str, table: str) -> dict[str, Any]:
    """A successful data refresh of one table (mode 3); returns its answer."""
    body = {"connection_id": connection, "schema_name": schema, "table_name": table, "data": True}
    response = client.post("/refresh", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def table_info(client: FlaskClient, connection: str, schema: str, table: str) -> dict[str, Any]:
    response = client.get(f"/connections/{connection}/tables/{schema}/{table}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def submit(client: FlaskClient, body: dict[str, Any]) -> str:
    """A request answered with 202 and a job; returns the job's id."""
    response = client.post("/refresh", json=body)
    assert response.status_code == 202, response.get_json()
    accepted = response.get_json()
    assert set(accepted) == {"job_id", "status", "status_url"}
    assert response.headers["Location"] == accepted["status_url"]
    assert accepted["status_url"] == f"/refresh/jobs/{accepted['job_id']}"
    return accepted["job_id"]


def wait_for_job(client: FlaskClient, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll the job API until the job has ended; returns its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/refresh/jobs/{job_id}")
        assert response.status_code == 200, response.get_json()
        job = response.get_json()
        if job["status"] in ("finished", "failed"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout} s: {job}"
        time.sleep(0.05)
