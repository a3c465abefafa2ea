"""``/connections/{id}/schedule``: a connection's refresh schedule, run by the scheduler process."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from refresh import schedules
from refresh.api.context import runtime
from refresh.api.parsing import json_body
from refresh.api.schemas import ScheduleRequestSchema, ScheduleSchema

blueprint = Blueprint("schedules", __name__)

SCHEDULE = "/connections/<connection_id>/schedule"


@blueprint.put(SCHEDULE)
def put_schedule(connection_id: str) -> Response:
    fields = json_body(ScheduleRequestSchema())
    schedule = schedules.put_schedule(runtime(), connection_id, fields)
    return jsonify(ScheduleSchema().dump(schedule))


@blueprint.get(SCHEDULE)
def get_schedule(connection_id: str) -> Response:
    return jsonify(ScheduleSchema().dump(schedules.get_schedule(runtime(), connection_id)))


@blueprint.delete(SCHEDULE)
def delete_schedule(connection_id: str) -> tuple[str, int]:
    schedules.delete_schedule(runtime(), connection_id)
    return "", 204
