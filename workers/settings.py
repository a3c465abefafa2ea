"""The settings module of ``rq worker -c workers.settings``, and of ``workers.scheduler``.

rq reads ``REDIS_URL`` and ``QUEUES`` from it; they come from the service's own configuration,
read and checked once like every other process does (one line naming a bad variable, exit 1).
The check builds a ``Runtime`` (its storage checks ``CACHE_URL`` and ``S3_ENDPOINT_URL``) and
drops it: each work horse builds its own.
``settings`` (lower case, so rq ignores it) is that configuration, for the scheduler.
"""

from __future__ import annotations

import sys

from config import ConfigError, load_settings
from refresh.runtime import Runtime
from workers.queues import QUEUES as _QUEUES
from workers.queues import client_url

try:
    settings = load_settings()
    Runtime.from_settings(settings)
except ConfigError as error:
    sys.exit(f"configuration error: {error}")
if settings.embedded:
    sys.exit(
        "configuration error: REDIS_URL (or REDIS_TLS_URL) is required by the worker and "
        "the scheduler"
    )

REDIS_URL = client_url(settings.redis_url)
QUEUES = list(_QUEUES)
