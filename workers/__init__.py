"""The RQ side of the service: job entry points, queues, worker and scheduler set-up.

Everything that imports ``rq`` lives here; each job is a thin wrapper that calls the same
``refresh.*`` function the API calls in the request. Processes (see the Procfile):

- ``worker``: ``rq worker -c workers.settings -w workers.worker.RefreshWorker``, forking one work
  horse per job (``workers.worker``), queues ``refresh`` and ``maintenance``;
- ``scheduler``: ``python -m workers.scheduler``, RQ's cron scheduler enqueueing the periodic
  maintenance jobs of ``workers.maintenance`` (deferred deletion, orphan sweep) on
  ``maintenance``, through Redis outages;
- the web process submits jobs through ``workers.runner.RQJobQueue``; without Redis it runs the
  same jobs, and the same schedule, on an in-process broker (``workers.embedded``).
"""
