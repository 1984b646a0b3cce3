"""The private Prefect server a stage starts when PREFECT_API_URL is unset: a real server (uvicorn on 127.0.0.1)
that answers the run's own client and refuses anyone without the run's random credential."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prefect import flow

from core.paths import REPO_ROOT
from flows.server import temporary_prefect_server


@flow(name="corpusforge-test-private-server")
def add_one(x: int) -> int:
    return x + 1


def _children_cmdlines() -> list[str]:
    """The command lines of this process's children (what `ps` shows every local user)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid():
                out.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):  # a process that ended while we looked
            continue
    return out


def test_private_server_refuses_requests_without_the_run_credential(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    for name in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING"):
        monkeypatch.delenv(name, raising=False)
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING

    warmed: list[list[str]] = []  # warm_up runs once, with the server's process already started
    with temporary_prefect_server(warm_up=lambda: warmed.append(_children_cmdlines())) as url:
        assert len(warmed) == 1 and any("uvicorn" in cmdline for cmdline in warmed[0]), warmed
        credential = PREFECT_API_AUTH_STRING.value()
        assert credential and len(credential) >= 32
        # Another local user: no credential, or a guessed one.
        anonymous = httpx.post(f"{url}/flow_runs/filter", json={"limit": 1}, timeout=10)
        assert anonymous.status_code == 401, anonymous.text
        guess = "Basic " + base64.b64encode(b"admin:admin").decode()
        guessed = httpx.post(
            f"{url}/flow_runs/filter", json={"limit": 1}, headers={"Authorization": guess}, timeout=10
        )
        assert guessed.status_code == 401
        assert httpx.post(f"{url}/flows/", json={"name": "intruder"}, timeout=10).status_code == 401
        # The credential is in the server's environment, not on its command line.
        assert not any(credential in cmdline for cmdline in _children_cmdlines())
        # The run's own client: a flow runs through the server and the server recorded it.
        assert add_one(41) == 42
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs()
        assert [(r.state_type.value if r.state_type else None) for r in runs] == ["COMPLETED"]
    with pytest.raises(httpx.HTTPError):  # stopped with the run
        httpx.get(f"{url}/health", timeout=2)


WARM_PROBE = """
import sys
from flows.server import _prefect_package_dir
from flows.stage import warm_imports
assert _prefect_package_dir().name == "prefect"
assert "prefect" not in sys.modules, "the command imports Prefect before its private server's process is started"
warm_imports(filters_in_process=True)
assert "flows.stage_flow" in sys.modules
assert "torch" not in sys.modules, "the warm-up imported torch (spaCy must come in without it)"
assert {"spacy", "filters.chain", "matplotlib.figure", "report.html"} <= set(sys.modules)
assert "sklearn" not in sys.modules, "toxicity scores in numpy (filters/toxicity_model.py): nothing needs scikit-learn"
from sharding.tokenizer import _LOADED
assert sorted(_LOADED) == ["o200k_harmony", "qwen"], sorted(_LOADED)
print("ok")
"""


def test_the_warm_up_imports_what_the_run_needs_without_torch():
    """What `flows.stage` imports while the private server boots: the flow's module (Prefect: not imported before
    the server's process starts, so that both start at once), the filter step's spaCy (without torch: thinc's
    torch import would cost 1.3 s and its memory in a process that never uses it), the report and its tokenizers;
    not scikit-learn, which nothing the stage runs needs any more."""
    res = subprocess.run(
        [sys.executable, "-c", WARM_PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


def test_exit_waits_for_the_runs_of_this_process_only():
    """The private server's database is shared by every run of the user (PREFECT_HOME): the wait at exit counts the
    task runs of the flow runs this process logged (Prefect's run records carry the runs' ids), not those of a
    stage running beside it (12-20 s waited), and knows how many task runs it waits for."""
    import logging

    from flows.server import RunsSeen

    runs = RunsSeen()
    flow_run, task_run = "3386eec9-5cdf-40fe-9f42-2450271e2b74", "44b50d80-9b45-4427-b348-5e643dbffdd3"
    for name, extra in [
        ("prefect.flow_runs", {"flow_run_id": flow_run}),
        ("prefect.task_runs", {"flow_run_id": flow_run, "task_run_id": task_run}),
        ("prefect.flow_runs", {"flow_run_id": "<unknown>"}),
        ("prefect.flow_runs", {}),
    ]:
        runs.handle(logging.makeLogRecord({"name": name, "msg": "Finished in state Completed()", **extra}))
    assert runs.flow_runs == {flow_run} and runs.task_runs == {task_run}
