"""The settings module of ``rq worker -c workers.settings``, and of ``workers.scheduler``.

rq reads ``REDIS_URL`` and ``QUEUES`` from it; they come from the service's own configuration,
read and checked once like every other process does (one line naming a bad variable, exit 1).
``settings`` (lower case, so rq ignores it) is that configuration, for the scheduler.
"""

from __future__ import annotations

import sys

from config import ConfigError, load_settings
from workers.queues import QUEUES as _QUEUES
from workers.queues import client_url

try:
    settings = load_settings()
except ConfigError as error:
    sys.exit(f"configuration error: {error}")
if settings.embedded:
    sys.exit(
        "configuration error: REDIS_URL (or REDIS_TLS_URL) is required by the worker and "
        "the scheduler"
    )

REDIS_URL = client_url(settings.redis_url)
QUEUES = list(_QUEUES)
