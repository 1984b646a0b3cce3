"""A private, temporary Prefect API server that dies with the run.

Prefect starts its own temporary server when no `PREFECT_API_URL` is set, but a SIGKILLed run leaves that
uvicorn process behind (one orphan per kill). This starts the same server (Prefect's API app under uvicorn, on
127.0.0.1, on a free port) with the kernel told to kill it when its parent dies (`PR_SET_PDEATHSIG`), and
stops it when the run ends, fails or is interrupted.

Stopping it cleanly, so that a successful run ends without a traceback: the client's queued events and logs are
sent first (`drain_prefect_workers`), then the server is given time to record them (`wait_until_recorded`: its
task-run recorder turns each event into a task-run state; stopped mid-write, it logs an ERROR with two
CancelledError tracebacks and the UI misses the last states), then uvicorn gets SIGTERM and a graceful shutdown.
What the server itself prints (start-up, shutdown) goes to `log_file` (the run's `logs/prefect-server.log`), not
to the terminal.

127.0.0.1 is every local user's: the server requires a random per-run credential (Prefect's
`PREFECT_SERVER_API_AUTH_STRING`, passed in the server's environment, never on its command line, which `ps` shows
to anyone), and only this process's client holds it (`PREFECT_API_AUTH_STRING`), so another user on the machine
cannot read or drive the run's flows. Its health probe stays open (Prefect's choice), nothing else.
"""

from __future__ import annotations

import base64
import importlib.util
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from flows.logs import RUN_LOGGERS
from pipeline.orphans import parent_death_guard

STARTUP_TIMEOUT_S = 120.0  # a loaded 2-core machine can take ~20 s to migrate a fresh SQLite database
RECORD_TIMEOUT_S = 20.0  # at most this long for the server to record the events of a run that has ended
SHUTDOWN_TIMEOUT_S = 15.0  # uvicorn's graceful shutdown (services stopped, database closed), then SIGKILL
# The task-run recorder turns client events into task-run states. Prefect's defaults write one event per database
# transaction; on a loaded 2-core machine that fell ~13 s behind a flow of 300 tasks (so the run waited for it at
# exit, or lost the last states). In batches of up to 100, at most 1 s apart, it keeps up.
RECORDER_SETTINGS = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class StartedServer:
    """A private server's process, started and not yet waited for (`start_private_server`)."""

    proc: subprocess.Popen
    url: str
    credential: str
    log_file: Path | None
    output: IO[bytes] | None

    def stop(self) -> None:
        """Stop the server (`stop_server`) and close its log."""
        try:
            stop_server(self.proc)
        finally:
            if self.output is not None:
                self.output.close()

    def discard(self) -> None:
        """Kill a server that turned out not to be needed (still importing: it has nothing to save or print)."""
        self.proc.kill()
        self.proc.wait()
        if self.output is not None:
            self.output.close()


def start_private_server(log_file: Path | None = None) -> StartedServer:
    """Start a private server's process on a free port of 127.0.0.1, with a fresh credential; does not wait for it
    and does not import Prefect (a few ms), so that the caller can import Prefect while the server starts.

    Args:
        log_file: where the server's stdout and stderr go (appended); default: this process's.
    """
    port = _free_port()
    credential = secrets.token_urlsafe(32)
    output: IO[bytes] | None = None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        output = log_file.open("ab")
    try:
        proc = _start_server(port, credential, output)
    except BaseException:
        if output is not None:
            output.close()
        raise
    return StartedServer(proc, f"http://127.0.0.1:{port}/api", credential, log_file, output)


@contextmanager
def temporary_prefect_server(
    timeout_s: float = STARTUP_TIMEOUT_S,
    log_file: Path | None = None,
    warm_up: Callable[[], None] | None = None,
    started: StartedServer | None = None,
) -> Iterator[str]:
    """Yield the API URL of a fresh Prefect server bound to 127.0.0.1; the server is stopped on exit and
    killed by the kernel if this process dies first.

    Args:
        timeout_s: how long the server may take to answer its health probe.
        log_file: where the server's stdout and stderr go (appended); default: this process's.
        warm_up: called once the server process is started, before waiting for it: work the run does anyway
            (imports), done while the server boots (~3 s of its own CPU, on another core) instead of after.
        started: a server already started with `start_private_server` (its own `log_file`); default: start one.
    """
    server = started if started is not None else start_private_server(log_file)
    try:
        from prefect.settings import (
            PREFECT_API_AUTH_STRING,
            PREFECT_API_URL,
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
            temporary_settings,
        )

        if warm_up is not None:
            warm_up()
        _wait_until_healthy(server.proc, server.url, timeout_s, server.log_file)
        # Prefect keeps one events worker per process, whatever the API: one started for another server (a test
        # session's) would send this server's events there and fail on each. Drained now, it starts afresh here.
        drain_prefect_workers()
        started_at = datetime.now(UTC) - timedelta(seconds=1)  # this run's task runs are scheduled after this
        settings = {
            PREFECT_API_URL: server.url,
            PREFECT_API_AUTH_STRING: server.credential,
            # No flow run heartbeats: they let a long-lived server notice a run that crashed, and this one dies with
            # the run. Their thread sleeps in 1 s steps and is joined when the flow ends: 0-1 s of every run.
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
        }
        runs, run_loggers = RunsSeen(), [logging.getLogger(name) for name in RUN_LOGGERS]
        with temporary_settings(updates=settings):
            for logger in run_loggers:
                logger.addHandler(runs)
            try:
                yield server.url
            finally:
                for logger in run_loggers:
                    logger.removeHandler(runs)
                drain_prefect_workers()
                wait_until_recorded(
                    server.url, server.credential, since=started_at, flow_runs=runs.flow_runs, task_runs=runs.task_runs
                )
    finally:
        server.stop()


def _start_server(port: int, credential: str, output: IO[bytes] | None) -> subprocess.Popen:
    """Prefect's API app under uvicorn on 127.0.0.1:`port`, requiring `credential` (passed in its environment,
    never on its command line), killed by the kernel if this process dies."""
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env["PREFECT_SERVER_API_AUTH_STRING"] = credential
    env.update(RECORDER_SETTINGS)
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(_prefect_package_dir().parent),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]
    return subprocess.Popen(
        cmd, env=env, preexec_fn=parent_death_guard(), stdin=subprocess.DEVNULL, stdout=output, stderr=output
    )


def _prefect_package_dir() -> Path:
    """Where the `prefect` package is installed, found without importing it (~0.8 s)."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the prefect package is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations)))


def _wait_until_healthy(proc: subprocess.Popen, url: str, timeout_s: float, log_file: Path | None) -> None:
    """Probe the server's health endpoint until it answers 200; RuntimeError if it exits or `timeout_s` passes."""
    import httpx

    # One client for every probe: `httpx.get` builds a new client, and with it an SSL context (~60 ms), each
    # time (2-3 s of a one-document stage went there).
    with httpx.Client(timeout=2) as probe:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                where = f"; see {log_file}" if log_file else ""
                raise RuntimeError(
                    f"the temporary Prefect server exited with code {proc.returncode} while starting{where}"
                )
            try:
                if probe.get(f"{url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the temporary Prefect server did not answer within {timeout_s:.0f} s; "
                    "start one with `prefect server start` and set PREFECT_API_URL"
                )
            time.sleep(0.1)


class RunsSeen(logging.Handler):
    """The flow runs and task runs this process ran while the handler is attached to Prefect's run loggers
    (`RUN_LOGGERS`): Prefect's run loggers attach the run's ids to every record; a flow run logs its start, a task
    run its end."""

    def __init__(self) -> None:
        super().__init__()
        self.flow_runs: set[str] = set()
        self.task_runs: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        for attribute, ids in (("flow_run_id", self.flow_runs), ("task_run_id", self.task_runs)):
            try:
                ids.add(str(uuid.UUID(str(getattr(record, attribute, "")))))
            except ValueError:  # a record without one (Prefect writes "<unknown>" outside a run)
                pass


def wait_until_recorded(
    url: str,
    credential: str,
    since: datetime,
    timeout_s: float = RECORD_TIMEOUT_S,
    flow_runs: Collection[str] = (),
    task_runs: Collection[str] = (),
) -> None:
    """Wait until the server has turned the events it received into task-run states: no task run of this run
    (scheduled after `since`, and of the `flow_runs` when given) left pending or running, and either at least as
    many as the `task_runs` this process ran (exact: a task run the recorder has not seen at all is not counted) or,
    when those are not known, their number unchanged between two reads 0.25 s apart. Gives up after `timeout_s` (a
    failed run may leave a task run running for good).

    Only this run's task runs count: the server's database is PREFECT_HOME's, which keeps the task runs of every
    earlier run, and those of a killed run stay RUNNING for good (counted, they made every later run wait the
    whole timeout at exit: 20 s). Another run writing to the same database at the same time (a second stage of the
    same user) has task runs scheduled after `since` too: counted, it made this one wait for it (12-20 s at exit on
    a shared machine); `flow_runs` leaves it out."""
    import httpx

    this_run: dict[str, Any] = {"expected_start_time": {"after_": since.isoformat()}}
    if flow_runs:
        this_run["flow_run_id"] = {"any_": sorted(flow_runs)}
    unfinished = {**this_run, "state": {"type": {"any_": ["PENDING", "RUNNING"]}}}
    headers = {"Authorization": "Basic " + base64.b64encode(credential.encode()).decode()}
    deadline, last = time.monotonic() + timeout_s, None
    with httpx.Client(base_url=url, headers=headers, timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                total = client.post("/task_runs/count", json={"task_runs": this_run}).json()
                seen = (total, client.post("/task_runs/count", json={"task_runs": unfinished}).json())
            except (httpx.HTTPError, ValueError):
                return  # the server is not answering: nothing more will be recorded
            if seen[1] == 0 and (seen == last or (task_runs and total >= len(task_runs))):
                return
            last = seen
            time.sleep(0.1 if task_runs else 0.25)


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM: uvicorn stops accepting requests, stops the server's services and closes its database; SIGKILL
    only when that takes longer than SHUTDOWN_TIMEOUT_S."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def drain_prefect_workers() -> None:
    """Send Prefect's queued logs and events while the server is still up: otherwise its log worker retries
    against a stopped server for ~60 s (2+4+8+16+32 s backoff) before the process can exit."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=10)
        except Exception:
            pass


@contextmanager
def prefect_api(server_log: Path | None = None, warm_up: Callable[[], None] | None = None) -> Iterator[str | None]:
    """The configured API (`PREFECT_API_URL`), or a temporary private server when none is set (its output in
    `server_log`; `warm_up` runs while it boots, see `temporary_prefect_server`).

    NOTE: when Prefect is not imported yet and PREFECT_API_URL is not in the environment, the private server's
    process is started first and Prefect imported (~0.8 s) while it boots (~3 s). Only then can the setting be read
    from every source Prefect has (a profile, a .env file); if one names an API, that server is used and the
    private one, still importing, is killed (it has written nothing).
    """
    early = None
    if "prefect.settings" not in sys.modules and not os.environ.get("PREFECT_API_URL"):
        early = start_private_server(server_log)
    try:
        from prefect.settings import PREFECT_API_URL

        configured = PREFECT_API_URL.value()
    except BaseException:
        if early is not None:
            early.discard()
        raise
    if configured:
        if early is not None:
            early.discard()
        yield configured
        return
    with temporary_prefect_server(log_file=server_log, warm_up=warm_up, started=early) as url:
        yield url
