"""How soon an idle worker takes a job again once Redis is back from an outage, beside RQ's own.

    python -m bench.redis_recovery [--outages 20 60] [--rounds 3]

A worker started with the Procfile's command, idle, on a Redis server of its own
(``bench.common.RedisServer``). Each round stops Redis for the outage's length plus a
random part of the longest wait of the worker under test (so that rounds meet its retries at
every phase), starts it again (empty, as after a restart without persistence), enqueues a job the
moment Redis answers and reads when the worker started it (RQ's ``started_at``). The figure is
that delay, which the worker's retry cadence decides: the service's (``workers/redis_retry.py``:
1 s, 2 s, 4 s, then every 5 s), and as the reference RQ's own ``HerokuWorker`` in the same command,
which retries only while idle, after 1 s, 2 s, 4 s... up to every 60 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from redis import Redis
from rq import Queue
from rq.worker import HerokuWorker

from bench.common import RedisServer, procfile_command, procfile_processes, wait_until
from workers.queues import REFRESH
from workers.redis_retry import RETRY_MAX_SECONDS

JOB_DEADLINE_SECONDS = 120
# The worker under test, and its longest wait between two tries.
WORKERS = {
    "service": ("workers.worker.RefreshWorker", RETRY_MAX_SECONDS),
    "RQ's HerokuWorker": ("rq.worker.HerokuWorker", HerokuWorker.max_connection_wait_time),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outages", type=float, nargs="+", default=[20, 60])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    print(f"{'worker':<18}  {'outage':>10}  {'rounds':>6}  {'min':>6}  {'median':>6}  {'max':>6}")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        redis = RedisServer(root)
        redis.start()
        try:
            environ = {
                "REDIS_URL": redis.url,
                "SECRET_KEY": "bench",
                "DATABASE_URL": f"sqlite:///{root}/catalog.db",
                "CACHE_URL": f"file://{root}/cache",
                "FILE_SOURCES_DIR": str(root),
            }
            for label, (worker_class, longest_wait) in WORKERS.items():
                command = procfile_command("worker")
                command[command.index("-w") + 1] = worker_class
                logs = root / worker_class  # each worker's log of its own
                logs.mkdir()
                with procfile_processes("worker", 1, environ, logs, command):
                    wait_until(partial(listening, logs), 60, "no worker started")
                    for outage in args.outages:
                        delays = [
                            recovery(redis, outage + random.uniform(0, longest_wait))
                            for _ in range(args.rounds)
                        ]
                        print(
                            f"{label:<18}  {outage:>4g}-{outage + longest_wait:g} s  "
                            f"{args.rounds:>6}  {min(delays):>5.2f}s  "
                            f"{statistics.median(delays):>5.2f}s  {max(delays):>5.2f}s",
                            flush=True,
                        )
        finally:
            redis.stop()


def listening(logs: Path) -> bool:
    """Whether the worker writing its log in ``logs`` waits for jobs."""
    return "Listening on" in (logs / "worker-0.log").read_text()


def recovery(redis: RedisServer, outage: float) -> float:
    """Seconds from Redis's return after ``outage`` seconds down to the worker taking a job."""
    redis.stop()
    time.sleep(outage)  # the outage itself: its length is the parameter
    redis.start()
    back = datetime.now(UTC)
    job = Queue(REFRESH, connection=Redis.from_url(redis.url)).enqueue("os.getpid")
    wait_until(
        lambda: job.get_status() in ("finished", "failed"),
        JOB_DEADLINE_SECONDS,
        "the worker took no job",
    )
    job.refresh()
    return (job.started_at - back).total_seconds()


if __name__ == "__main__":
    main()
