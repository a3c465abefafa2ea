"""``POST /refresh`` (schema and data refresh, in the request or as a job) and the job API."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, jsonify, url_for

from refresh.api.context import job_queue, runtime
from refresh.api.parsing import json_object, validated
from refresh.api.schemas import (
    JobAcceptedSchema,
    JobSchema,
    RefreshRequestSchema,
    refresh_response,
)
from refresh.common.errors import RefreshError
from refresh.jobs import Job, JobStatus
from refresh.refresh_request import (
    Execution,
    RefreshRequest,
    execution,
    resolve_mode,
    run_refresh,
)

blueprint = Blueprint("refresh", __name__)


@blueprint.post("/refresh")
def post_refresh() -> Response | tuple[Response, int, dict[str, str]]:
    body = json_object()
    fields = validated(RefreshRequestSchema(), body)
    request = RefreshRequest(
        connection_id=fields.get("connection_id"),
        schema_name=fields.get("schema_name"),
        table_name=fields.get("table_name"),
        data=fields["data"],
        include_uncached=fields["include_uncached"],
        if_changed=fields["if_changed"],
        force=fields["force"],
        full=fields["full"],
        run_async=fields.get("async_"),
    )
    rt = runtime()
    mode = resolve_mode(rt, request)
    plan = execution(mode, request.run_async)
    if plan is Execution.INLINE:
        return jsonify(refresh_response(mode, asdict(run_refresh(rt, request, mode))))
    jobs = job_queue()
    job = jobs.submit(request, mode, body)
    if plan is Execution.AWAITED_JOB:
        job = jobs.wait(job.job_id, timeout=rt.settings.refresh_job_timeout_seconds)
        if job.status is JobStatus.FINISHED and job.result is not None:
            return jsonify(refresh_response(mode, job.result))
        if job.status is JobStatus.FAILED:
            raise RefreshError(f"the refresh job {job.job_id} failed: {job.error}")
    status_url = url_for(".get_job", job_id=job.job_id)
    accepted = {"job_id": job.job_id, "status": job.status, "status_url": status_url}
    return jsonify(JobAcceptedSchema().dump(accepted)), 202, {"Location": status_url}


@blueprint.get("/refresh/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    job = job_queue().get(job_id)
    return jsonify(_job(job))


def _job(job: Job) -> dict[str, Any]:
    body = JobSchema().dump(job)
    if job.result is not None:
        body["result"] = refresh_response(job.mode, job.result)
    return body
