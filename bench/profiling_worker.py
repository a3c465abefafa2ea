"""The Procfile's worker with each work horse profiled: where a job's time goes, from inside.

    rq worker -c workers.settings -w bench.profiling_worker.ProfilingWorker ...
    python -m bench.profiling_worker          # the summary of every horse's profile

Each work horse runs its job under cProfile (wall clock, its main thread) and writes
``<job id>.prof`` to ``PROFILES`` (a worker started by a benchmark gets only the service's
environment, hence a fixed place); the summary adds them up by step of a table's refresh, RQ's
own bookkeeping and the horse's start. For benchmarks only: the profiler slows Python code down.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
from pathlib import Path
from typing import Any

from rq.job import Job
from rq.queue import Queue

from workers.worker import RefreshWorker

PROFILES = Path("/tmp/refresh-horse-profiles")

# The steps of a refresh, by the function that does each: (label, file fragment, function).
STEPS = [
    ("horse start (Runtime: engines, clients)", "runtime.py", "current"),
    ("catalog: look-ups", "lookup.py", "load_connection"),
    ("catalog: claim", "claims.py", "claim"),
    ("source: describe (discovery + record)", "data_refresh.py", "describe"),
    ("source: describe (discovery + record)", "data_refresh.py", "_describe"),
    ("source: connect and build", "lookup.py", "open_source"),
    ("source read + Parquet write", "data_refresh.py", "_write_version"),
    ("source read + Parquet write", "data_refresh.py", "_write"),
    ("storage: prepare the directory", "storage/base.py", "prepare_cache_write"),
    ("catalog: publish", "outcomes.py", "publish"),
    ("catalog: publish", "data_refresh.py", "_publish"),
    ("Redis: outcome and progress", "progress.py", "record"),
    ("Redis: outcome and progress", "progress.py", "table_ended"),
    ("RQ: job start", "worker/base.py", "prepare_job_execution"),
    ("RQ: job end (results, dependents)", "worker/base.py", "_finalize_success"),
    ("RQ: job end (results, dependents)", "worker/base.py", "handle_job_success"),
]


class ProfilingWorker(RefreshWorker):
    def perform_job(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> bool:
        profile = cProfile.Profile()
        profile.enable()
        try:
            return super().perform_job(job, queue, *args, **kwargs)
        finally:
            profile.disable()
            PROFILES.mkdir(exist_ok=True)
            profile.dump_stats(PROFILES / f"{job.id}.prof")


def summarize(directory: Path) -> None:
    files = sorted(directory.glob("*.prof"))
    stats = pstats.Stats(*map(str, files))
    by_function = {(path, name): row for (path, _, name), row in stats.stats.items()}  # type: ignore[attr-defined]
    total = sum(row[3] for (path, name), row in by_function.items() if name == "perform_job")
    print(f"{len(files)} jobs, {total:.2f} s in perform_job")
    seen: dict[str, float] = {}
    for label, fragment, function in STEPS:
        for (path, name), row in by_function.items():
            if name == function and fragment in path:
                seen[label] = seen.get(label, 0.0) + row[3]  # cumulative time
    for label, seconds in seen.items():
        print(f"{label:40} {seconds:8.2f} s  {seconds / total * 100:5.1f}%")


if __name__ == "__main__":
    summarize(Path(sys.argv[1]) if len(sys.argv) > 1 else PROFILES)
