"""A private, temporary Prefect API server that dies with the run.

Prefect starts its own temporary server when no `PREFECT_API_URL` is set, but a SIGKILLed run leaves that
uvicorn process behind (one orphan per kill). This starts the same server (Prefect's API app under uvicorn, on
127.0.0.1, on a free port) with the kernel told to kill it when its parent dies (`PR_SET_PDEATHSIG`), and
stops it when the run ends, fails or is interrupted.

127.0.0.1 is every local user's: the server requires a random per-run credential (Prefect's
`PREFECT_SERVER_API_AUTH_STRING`, passed in the server's environment, never on its command line, which `ps` shows
to anyone), and only this process's client holds it (`PREFECT_API_AUTH_STRING`), so another user on the machine
cannot read or drive the run's flows. Its health probe stays open (Prefect's choice), nothing else.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.orphans import parent_death_guard

STARTUP_TIMEOUT_S = 120.0  # a loaded 2-core machine can take ~20 s to migrate a fresh SQLite database


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def temporary_prefect_server(timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """Yield the API URL of a fresh Prefect server bound to 127.0.0.1; the server is stopped on exit and
    killed by the kernel if this process dies first."""
    import httpx
    import prefect
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    port = _free_port()
    credential = secrets.token_urlsafe(32)
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # fmt: skip
    env["PREFECT_SERVER_API_AUTH_STRING"] = credential
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
           "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "error", "--lifespan", "on"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, preexec_fn=parent_death_guard(), stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the temporary Prefect server exited with code {proc.returncode} while starting")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the temporary Prefect server did not answer within {timeout_s:.0f} s; "
                                   "start one with `prefect server start` and set PREFECT_API_URL")  # fmt: skip
            time.sleep(0.2)
        with temporary_settings(updates={PREFECT_API_URL: url, PREFECT_API_AUTH_STRING: credential}):
            try:
                yield url
            finally:
                drain_prefect_workers()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
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
        except Exception:  # noqa: BLE001 - best effort: a log line lost at exit must not fail the run
            pass


@contextmanager
def prefect_api() -> Iterator[str | None]:
    """The configured API (`PREFECT_API_URL`), or a temporary private server when none is set."""
    from prefect.settings import PREFECT_API_URL

    configured = PREFECT_API_URL.value()
    if configured:
        yield configured
        return
    with temporary_prefect_server() as url:
        yield url
