"""What the whole-process benchmarks share: the shared corpora, the machine line, a process tree measured from
outside (wall time and memory peaks), and the ingested Parquet input both sides of a comparison read.

Scripts put the repository root on `sys.path` first (run as `python benchmarks/bench_x.py`, it is not there) and
import this module as `benchmarks.harness`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.paths import REPO_ROOT

CORPORA = Path(os.environ.get("CORPUSFORGE_CORPORA", REPO_ROOT.parent / "shared" / "corpora"))
OUT = REPO_ROOT / "benchmarks" / "out"


def corpora_jsonl(rel: str) -> list[dict]:
    """The rows of `CORPORA/rel`; a missing file names the folder the benchmark needs."""
    path = CORPORA / rel
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the benchmark needs ../shared/corpora (or CORPUSFORGE_CORPORA)")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def machine() -> str:
    """`2 CPUs (<model name>), Python 3.11.x`: the line a results table is stamped with."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


# --- measuring a process tree --------------------------------------------------------------------------------


@dataclass
class Measured:
    """One whole-process run: wall seconds, exit code, memory peaks in MiB (see `measure`)."""

    seconds: float
    rc: int
    started: float  # time.time() at the start, to line up with file times
    ended: float
    tree_mib: float = 0.0  # peak of the summed RSS of the process tree (sampled)
    largest_mib: float = 0.0  # peak RSS of the largest single process (kernel, or sampled when larger)
    worker_mib: float = 0.0  # largest sampled peak among unit-running processes (main when none)
    main_mib: float = 0.0
    roles: dict[str, float] = field(default_factory=dict)  # role -> largest sampled peak MiB
    processes: int = 0


_FINAL_ROLES = ("main", "worker", "forkserver", "prefect-server")


def _role(p: Any, root: int, forkservers: set[int]) -> str:
    import psutil

    try:
        cmd = " ".join(p.cmdline())
        ppid = p.ppid()
    except psutil.Error:
        return "other"
    if p.pid == root:
        return "main"
    if cmd.startswith("ray::") or "default_worker.py" in cmd:  # a Ray worker, before and after it renames itself
        return "worker"
    if "forkserver" in cmd:
        if ppid in forkservers:
            return "worker"
        forkservers.add(p.pid)
        return "forkserver"
    if ppid in forkservers:
        return "worker"
    if "resource_tracker" in cmd:
        return "other"
    if "prefect" in cmd or "uvicorn" in cmd:
        return "prefect-server"
    if "/ray/" in cmd or cmd.startswith("ray"):  # raylet, gcs_server, Ray's agents (paths inside the package)
        return "ray-system"
    try:
        return f"other: {p.name()}"
    except psutil.Error:
        return "other"


def _sample_tree(root: Any, main_pid: int, peaks: dict[int, tuple[str, int]], forkservers: set[int]) -> int:
    """One poll: each process's role and peak RSS into `peaks`; returns the tree's summed RSS now."""
    import psutil

    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        procs = []
    total = 0
    for p in procs:
        try:
            rss = p.memory_info().rss
        except psutil.Error:
            continue
        total += rss
        role, peak = peaks.get(p.pid) or ("", 0)
        if role not in _FINAL_ROLES:  # a new process may not have exec'd yet (a Ray worker forked by raylet)
            role = _role(p, main_pid, forkservers)
        peaks[p.pid] = (role, max(peak, rss))
    return total


def measure(
    cmd: list[str],
    cwd: Path,
    log_path: Path,
    timeout: float,
    interval: float = 0.05,
    env: dict[str, str] | None = None,
) -> Measured:
    """Run `cmd` in its own session, sample its process tree's RSS until it exits, kill leftovers.

    "tree" is the peak of the summed RSS of every process in it (shared pages count once per process), "largest"
    the peak RSS of the largest single process (the kernel's ru_maxrss from `wait4`, or the sampled peak of a
    pool worker, which the main process does not wait for, when larger), and "worker" the largest sampled peak
    among the processes that run units (pool or Ray workers; the main process at one worker).
    """
    import psutil

    with open(log_path, "w") as log:
        started = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        done: dict[str, Any] = {}

        def reap() -> None:  # a blocking wait4 in a thread: the end time does not depend on the sampling
            _, status, usage = os.wait4(proc.pid, 0)
            done.update(t=time.perf_counter(), ended=time.time(), status=status, usage=usage)

        waiter = threading.Thread(target=reap, daemon=True)
        waiter.start()
        peaks: dict[int, tuple[str, int]] = {}
        forkservers: set[int] = set()
        tree_peak = 0
        root = psutil.Process(proc.pid)
        while waiter.is_alive():
            tree_peak = max(tree_peak, _sample_tree(root, proc.pid, peaks, forkservers))
            if time.perf_counter() - t0 > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                waiter.join()
                break
            waiter.join(interval)
        try:  # anything the run left in its session is ours to stop (a stray Ray or Prefect process)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return _measured(done, t0, started, tree_peak, peaks)


def _measured(
    done: dict[str, Any], t0: float, started: float, tree_peak: int, peaks: dict[int, tuple[str, int]]
) -> Measured:
    roles: dict[str, float] = {}
    for role, peak in peaks.values():
        roles[role] = max(roles.get(role, 0.0), peak / 2**20)
        if role.startswith("other: "):
            roles["other"] = max(roles.get("other", 0.0), peak / 2**20)
    # ru_maxrss covers the child and the descendants it waited for; pool workers are the forkserver's children,
    # so the sampled per-process peaks can be larger. A short run can end before the first samples.
    largest = max([done["usage"].ru_maxrss / 1024, *roles.values()])
    return Measured(
        seconds=done["t"] - t0,
        rc=os.waitstatus_to_exitcode(done["status"]),
        started=started,
        ended=done["ended"],
        tree_mib=max(tree_peak / 2**20, largest),
        largest_mib=largest,
        worker_mib=roles.get("worker", roles.get("main", 0.0)),
        main_mib=roles.get("main", 0.0),
        roles=roles,
        processes=len(peaks),
    )


# --- the same Parquet input for both sides ---------------------------------------------------------------------


def write_input(root: Path, docs: list[dict], parts: int) -> Path:
    """`parts` JSONL files and a sources file over them (the JSON `id` kept in the documents' metadata)."""
    inp = root / f"input-{len(docs)}"
    shutil.rmtree(inp, ignore_errors=True)
    inp.mkdir(parents=True)
    step = -(-len(docs) // parts)
    for k in range(parts):
        with open(inp / f"part-{k:03d}.jsonl", "w", encoding="utf-8") as f:
            for d in docs[k * step : (k + 1) * step]:
                f.write(json.dumps({"id": d["id"], "text": d["text"]}, ensure_ascii=False) + "\n")
    (inp / "sources.toml").write_text(
        '[[source]]\nname = "bench"\ndomain = "web"\nformat = "jsonl"\n'
        'path = "part-*.jsonl"\nmetadata_fields = ["id"]\n',
        encoding="utf-8",
    )
    return inp


def ingest(inp: Path, prep: Path) -> Any:
    """The ingest step's units under `prep` (Parquet documents): run once untimed, then only listed."""
    from ingest.sources import load_sources
    from ingest.step import IngestStep
    from pipeline.layout import RunLayout
    from pipeline.runner import run_step

    return run_step(IngestStep(load_sources(inp / "sources.toml")), RunLayout(prep))
