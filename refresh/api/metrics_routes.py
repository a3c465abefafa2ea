"""``GET /metrics``: Prometheus text, behind ``API_TOKEN`` like the rest."""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST

from refresh import metrics
from refresh.api.context import job_queue, runtime

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def get_metrics() -> Response:
    return Response(metrics.render(runtime(), job_queue()), content_type=CONTENT_TYPE_LATEST)
