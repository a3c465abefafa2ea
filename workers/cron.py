"""The configuration of the Procfile's scheduler, ``rq cron -c workers.settings workers.cron``.

It registers ``workers.maintenance.periodic_jobs`` with RQ's ``cron.register``; ``rq cron``
enqueues each job on the ``maintenance`` queue when due, for a worker to run.
"""

from __future__ import annotations

from rq import cron

from workers.maintenance import periodic_jobs
from workers.settings import settings

for job in periodic_jobs(settings):
    cron.register(**job)
