"""Where work units run: in this process, in a pool of local processes, or on a Ray cluster.

All three call the same function (`pipeline.step.run_unit`) on the same units; outputs are named after the
unit, so the bytes do not depend on the executor or on the number of workers. An executor only decides where
a call runs; it never decides what a unit writes. No scheduler of our own: a `ProcessPoolExecutor` locally,
Ray's tasks on a cluster (Slurm users run the same units through a Prefect work pool or datatrove's Slurm
executor; see ARCHITECTURE.md).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from pipeline.orphans import set_parent_death_signal

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")


class Executor:
    """`submit(fn, *args) -> Future`; `close()` stops whatever the executor started."""

    name = "executor"
    workers = 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        raise NotImplementedError

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> list[Any]:
        """Run `fn(*args)` for every tuple, results in call order; the first failure is raised after the
        others finish (a unit that failed leaves no output; the ones that succeeded keep theirs)."""
        futures = [self.submit(fn, *args) for args in calls]
        results, error = [], None
        for f in futures:
            try:
                results.append(f.result())
            except BaseException as e:
                error = error or e
        if error is not None:
            raise error
        return results

    def release_workers(self) -> None:
        """Called after a step whose units load models (`Step.loads_models`); a pool replaces its workers."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineExecutor(Executor):
    """`--workers 1`: every unit in this process, one after the other (no pickling, easiest to debug).

    NOTE: Prefect's task runner calls `submit` from several threads at once; units must still run one at a time
    here, since steps share per-process objects (spaCy pipelines, models) that are not thread-safe.
    """

    name = "local"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        f: Future = Future()
        try:
            with self._lock:
                f.set_result(fn(*args))
        except BaseException as e:
            f.set_exception(e)
        return f


def _worker_init() -> None:
    # A worker dies with its parent (the forkserver, which dies with the run): a SIGKILLed run leaves nothing.
    # The forkserver's pid comes with the memory it forked us from (None if its preload failed).
    guard = sys.modules.get("pipeline.forkserver_guard")
    set_parent_death_signal(getattr(guard, "FORKSERVER_PID", None))


class LocalExecutor(Executor):
    """`--workers N`: N worker processes on this machine (forkserver: a clean process, never a fork of a
    threaded Prefect flow), started when a step first submits and reused by the steps after it, except that
    `release_workers` (after a step that loads models) ends them: a worker that has loaded the filters' models
    (and a sampled scorer's torch and language model) holds ~0.4-0.9 GiB of RSS that the dedup and shard steps
    never use; fresh workers fork from the preloaded forkserver in milliseconds."""

    name = "local"

    def __init__(self, workers: int) -> None:
        import multiprocessing as mp

        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._ctx = mp.get_context("forkserver")
        # pipeline.forkserver_guard makes the forkserver itself die with this process (its workers die with it in turn).
        self._ctx.set_forkserver_preload(["pipeline.forkserver_guard", "pipeline.step", "pyarrow.parquet", "numpy"])
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()  # Prefect's task runner submits from several threads at once

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=self._ctx, initializer=_worker_init)
            return self._pool.submit(fn, *args)

    def release_workers(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:  # waits for the workers to exit, so that their memory is gone when this returns
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self.release_workers()


class RayExecutor(Executor):
    """`--executor ray`: units as Ray tasks, on the cluster at `address` (or `RAY_ADDRESS`), else on a local
    Ray started here (bound to 127.0.0.1, no dashboard, `workers` CPUs) and stopped by `close()`.

    The run directory must be on storage every Ray node sees (as for datatrove's Ray and Slurm executors).
    """

    name = "ray"

    def __init__(self, workers: int, address: str | None = None) -> None:
        import ray

        self.workers = workers
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._started_here = address is None
        self._reaper = None
        if not ray.is_initialized():
            if address is None:
                from pipeline.reaper import Reaper

                ray.init(
                    num_cpus=workers,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    log_to_driver=False,
                    configure_logging=False,
                )
                # A local Ray's agents outlive a SIGKILLed driver: a watcher kills them if this process dies.
                self._reaper = Reaper()
                self._reaper.guard_children()
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        self._ray = ray
        self._remote_cache: dict[Callable, Any] = {}

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        remote = self._remote_cache.get(fn)
        if remote is None:
            remote = self._remote_cache[fn] = self._ray.remote(num_cpus=1, max_retries=0)(fn)
        return remote.remote(*args).future()

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()
        if self._reaper is not None:
            self._reaper.close()


def make_executor(kind: str = "local", workers: int = 1, ray_address: str | None = None) -> Executor:
    """The executor `--executor KIND --workers N [--ray-address ADDR]` asks for."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; choose one of {list(EXECUTORS)}")
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if kind == "ray":
        return RayExecutor(workers, ray_address)
    return InlineExecutor() if workers == 1 else LocalExecutor(workers)
