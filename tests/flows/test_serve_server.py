"""Against a real `prefect server start` on 127.0.0.1: the deployments `python -m flows.serve` registers (schedule,
parameters, paused state, concurrency), one triggered run to completion, and what the Prefect UI shows of it in
headless Chromium; plus the run's HTML report rendered in Chromium.

Needs Debian's `chromium` (scripts/bootstrap.sh installs it) and Playwright (a dev dependency) for the UI test; it
skips with that line when either is absent, and fails under CORPUSFORGE_REQUIRE_BROWSER=1 (.ci/run).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.report.leaky_corpus import write_leaky_corpus, write_stage_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
INSTALL = "bash scripts/bootstrap.sh installs it (apt-get install -y chromium)"
if CHROMIUM is None and os.environ.get("CORPUSFORGE_REQUIRE_BROWSER") == "1":
    # .ci/run sets this: there a missing browser is a failure, not a quiet skip.
    raise RuntimeError(f"chromium not installed: {INSTALL}")
STARTUP_S = 240  # a fresh SQLite database is migrated on first start: slow on a loaded 2-core machine
RUN_S = 600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, and everything it started (uvicorn, flow-run subprocesses)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
    try:  # children that outlived the leader keep its process group
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prefect server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"prefect server did not answer within {STARTUP_S} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real Prefect server (SQLite under a temporary PREFECT_HOME, 127.0.0.1, UI on) and `python -m flows.serve`
    serving every deployment into a temporary runs root; both (and their children) are killed at the end."""
    tmp = tmp_path_factory.mktemp("served")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_API_URL=api,
        PREFECT_SERVER_API_HOST="127.0.0.1",
        CORPUSFORGE_NO_PROGRESS="1",
    )
    server_log = tmp / "server.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=server_log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    procs = [server]
    try:
        _wait_healthy(api, server, server_log)
        serve_log = tmp / "serve.log"
        serve = subprocess.Popen(
            [sys.executable, "-m", "flows.serve", "--out-root", str(tmp / "runs"), "--limit", "50"],
            env={**env, "PREFECT_API_URL": api},
            cwd=REPO,
            stdout=serve_log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(serve)
        yield {
            "api": api,
            "ui": f"http://127.0.0.1:{port}",
            "tmp": tmp,
            "serve": serve,
            "serve_log": serve_log,
            "server_log": server_log,
        }
    finally:
        for p in reversed(procs):
            _stop(p)


@pytest.fixture(scope="module")
def api(served):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: served["api"]}):
        yield served


def _deployments(api_info, names: set[str]) -> dict:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + STARTUP_S
    with get_client(sync_client=True) as client:
        while True:
            found = {f"{client.read_flow(d.flow_id).name}/{d.name}": d for d in client.read_deployments()}
            if names <= set(found):
                return found
            if api_info["serve"].poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"deployments {sorted(names - set(found))} missing; serve log: "
                    f"{api_info['serve_log'].read_text()[-3000:]}"
                )
            time.sleep(1)


@pytest.fixture(scope="module")
def completed_run(api):
    """The `general` deployment triggered through the API (on the leaky fixture corpus), run by the serve
    process, waited for until it finished."""
    from prefect.deployments import run_deployment

    _deployments(api, {"corpusforge-stage/general"})
    root = api["tmp"] / "corpus"
    root.mkdir()
    sources = write_leaky_corpus(root)
    cfg = write_stage_config(root, sources)
    out = api["tmp"] / "runs" / "triggered"
    run = run_deployment(
        "corpusforge-stage/general",
        timeout=RUN_S,
        parameters={"sources": str(sources), "config": str(cfg), "out": str(out)},
    )
    return {"run": run, "out": out}


def test_deployments_exist_with_schedule_parameters_and_state(api):
    found = _deployments(
        api,
        {
            "corpusforge-stage/general",
            "corpusforge-stage/reasoning",
            "corpusforge-stage/long_context",
            "corpusforge-train/train",
            "corpusforge-synth/synth",
        },
    )
    runs = str(api["tmp"] / "runs")
    expected = {"general": "0 2 * * *", "reasoning": "0 4 * * *", "long_context": "0 6 * * 0"}
    for stage, cron in expected.items():
        d = found[f"corpusforge-stage/{stage}"]
        assert [s.schedule.cron for s in d.schedules] == [cron] and d.schedules[0].schedule.timezone == "UTC"
        assert d.schedules[0].active and not d.paused
        assert d.parameters == {"stage": stage, "out": f"{runs}/{stage}", "limit": 50}
        props = d.parameter_openapi_schema["properties"]
        assert {"stage", "sources", "out", "limit", "config", "dry_run", "workers"} <= set(props)
        assert props["workers"]["type"] == "integer" and props["dry_run"]["type"] == "boolean"
        assert d.global_concurrency_limit is not None and d.global_concurrency_limit.limit == 1
        assert d.concurrency_options.collision_strategy == "ENQUEUE"
        assert {"corpusforge", stage} <= set(d.tags)
    train = found["corpusforge-train/train"]
    assert train.paused and not train.schedules[0].active and train.schedules[0].schedule.cron == "0 8 * * 0"
    assert train.parameters == {"stage": "general", "steps": 300, "out": f"{runs}/general"}
    assert train.parameter_openapi_schema["properties"]["steps"]["type"] == "integer"
    synth = found["corpusforge-synth/synth"]
    assert synth.paused and synth.parameters["count"] == 1000 and synth.parameters["out"] == f"{runs}/synth"


def test_triggered_run_completes_with_its_report(completed_run):
    from prefect.client.orchestration import get_client

    run = completed_run["run"]
    assert run.state is not None and run.state.is_completed(), f"run ended {run.state}"
    out = completed_run["out"]
    assert (out / "funnel.json").is_file()
    assert (out / "report" / "index.html").is_file(), "the stage did not write <run>/report/index.html"
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs()
        logs = client.read_logs()
    # The work units of a step are mapped task runs of this flow run, named <step>:<unit key>.
    filter_units = [t for t in tasks if t.flow_run_id == run.id and t.name.startswith("filter:")]
    assert len(filter_units) == 4 and all(t.state.is_completed() for t in filter_units)
    assert any(lg.flow_run_id == run.id and "step filter" in lg.message for lg in logs), "step logs missing in the UI"


@pytest.mark.skipif(CHROMIUM is None, reason=f"chromium not installed ({INSTALL})")
def test_ui_and_report_in_headless_chromium(api, completed_run, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason=f"playwright not installed ({INSTALL})")
    from report.artifacts import artifact_key

    shots = Path(os.environ.get("CORPUSFORGE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    run = completed_run["run"]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{api['ui']}/deployments")
            for name in ("general", "reasoning", "long_context", "train"):
                page.get_by_text(name, exact=True).first.wait_for()
            page.get_by_text("corpusforge-stage").first.wait_for()
            page.screenshot(path=str(shots / "deployments.png"), full_page=True)

            key = artifact_key("general", "report")
            page.goto(f"{api['ui']}/runs/flow-run/{run.id}?tab=Artifacts")
            try:
                page.get_by_text(run.name).first.wait_for()
                page.get_by_text("Completed").first.wait_for()
                if not page.get_by_text(key).count():
                    page.get_by_text("Artifacts", exact=True).first.click()
                page.get_by_text(key).first.wait_for()
            finally:  # the page as it was, also when a wait timed out: what a person would have seen
                page.screenshot(path=str(shots / "flow-run-artifacts.png"), full_page=True)

            page.get_by_text(key).first.click()  # the artifact's own page: the markdown report, rendered
            try:
                page.get_by_text("Top drop reasons").first.wait_for()
                page.get_by_text("gopher_quality_too_many_bullets").first.wait_for()
            finally:
                page.screenshot(path=str(shots / "report-artifact.png"), full_page=True)

            # The HTML report, from the file, offline: no console error, no request, every plot drawn.
            context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
            report = context.new_page()
            errors, requests = [], []
            report.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            report.on("pageerror", lambda e: errors.append(str(e)))
            report.on("request", lambda r: requests.append(r.url))
            report.goto((completed_run["out"] / "report" / "index.html").as_uri())
            plots = report.locator("figure.plot svg")
            assert plots.count() >= 6
            for i in range(plots.count()):
                svg = plots.nth(i)
                box = svg.bounding_box()
                assert box and box["width"] > 100 and box["height"] > 50, f"plot {i} has no size"
                assert svg.locator("path").count() > 5, f"plot {i} drew nothing"
            for anchor in ("funnel", "languages", "lengths", "quality", "tokens"):
                assert report.locator(f'figure.plot[data-plot="{anchor}"] svg').count() == 1, anchor
            report.screenshot(path=str(shots / "report.png"), full_page=True)
            assert errors == [], errors
            assert [u for u in requests if not u.startswith("file:")] == []
        finally:
            browser.close()
    assert (shots / "deployments.png").stat().st_size > 10_000


def test_a_run_directory_admits_one_run_at_a_time(api, tmp_path):
    from prefect.client.orchestration import get_client

    from flows.serve import run_dir_limit_name, run_dir_slot

    out = tmp_path / "runs" / "general"
    with run_dir_slot(out) as name:
        assert name == run_dir_limit_name(out) and name != run_dir_limit_name(tmp_path / "other")
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(name)
        assert limit.limit == 1 and limit.active_slots == 1
        with pytest.raises(TimeoutError):  # a second run into the same directory waits (here: gives up)
            with run_dir_slot(out, timeout_s=2):
                pass
        with run_dir_slot(tmp_path / "other", timeout_s=10):  # another directory is not held up
            pass
    with run_dir_slot(out, timeout_s=10):  # released at the end of the first
        pass
