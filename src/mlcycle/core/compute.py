"""Where parallel work runs: a Dask cluster, chosen by params `compute`.

`cluster(params.compute)` gives a `distributed.Client` for the length of a job and closes what it
started: with `compute.scheduler` null, an embedded `LocalCluster` of worker processes sized to the
machine (nothing to start by hand); with a scheduler address (`tcp://host:8786`), that cluster, the
same code path. Each local worker runs `threads_per_worker` threads and bounds its OpenMP and BLAS
pools to as many (set in the worker's environment before it starts), so several CPU-heavy workers
on a small machine do not each start one thread per core. Workers of an external cluster are
started by whoever runs it: start them with the same variables (docs/scaling.md shows how).

Dask loads only where a cluster is asked for, never with every command.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from mlcycle.core.errors import ComputeError

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def cores() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def local_workers(compute) -> int:
    """Worker processes of the embedded cluster: `compute.workers`, or one per `threads_per_worker` cores."""
    if compute.workers != "auto":
        return int(compute.workers)
    return max(1, cores() // compute.threads_per_worker)


@contextmanager
def cluster(compute) -> Iterator:
    """A Dask client on `compute.scheduler`, or on a local cluster started (and closed) here."""
    import dask
    from distributed import Client, LocalCluster

    threads = str(compute.threads_per_worker)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {v: threads for v in THREAD_VARIABLES},
                          "distributed.worker.daemon": False}):
        if compute.scheduler:
            try:
                client = Client(compute.scheduler, timeout=compute.connect_seconds)
            except OSError as exc:
                raise ComputeError(f"compute.scheduler {compute.scheduler!r} cannot be reached ({exc}); start it "
                                   "(`dask scheduler`, then `dask worker <address>` on each machine), or set "
                                   "compute.scheduler: null for a local cluster") from None
            try:
                yield client
            finally:
                client.close()
            return
        local = LocalCluster(n_workers=local_workers(compute), threads_per_worker=compute.threads_per_worker,
                             processes=True, memory_limit=compute.memory_limit,
                             dashboard_address=":0" if compute.dashboard else None,
                             silence_logs=logging.ERROR)
        try:
            client = Client(local)
            try:
                yield client
            finally:
                client.close()
        finally:
            local.close()  # in `finally`: workers of a failed job never outlive it


def describe(client) -> dict[str, str]:
    """The cluster as tags for a run: scheduler address, workers, threads, dashboard link."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    return {"mlcycle.compute.scheduler": str(info.get("address", "")),
            "mlcycle.compute.workers": str(len(workers)),
            "mlcycle.compute.threads": str(sum(w.get("nthreads", 0) for w in workers.values())),
            "mlcycle.compute.dashboard": str(client.dashboard_link or "")}
