"""Real vLLM (CPU) end to end on our own tiny trained model: serve, generate, kill and resume, two servers.

Slow (each server start is ~30-170 s on 2 shared cores): two servers are started once for the module, and
only the tests about a run's own server start one. Skipped without `.venv-engine`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synth.run import GENERATIONS, generate
from synth.seeds import sample_seeds
from synth.server import ENGINE_VENV, EngineServer, process_group_members
from synth.templates import load_template

pytestmark = pytest.mark.skipif(not (ENGINE_VENV / "bin" / "python").is_file(),
                                reason="vLLM engine not installed: run `bash scripts/bootstrap_engine.sh`")  # fmt: skip
REPO = Path(__file__).resolve().parents[2]
SERVER_KW = {"dtype": "float32", "max_model_len": 1024, "kv_cache_gib": 1}
SAMPLING = {"max_tokens": 24, "stop": [" the"]}  # the tiny model says " the" often: some requests finish by stop


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from synth.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"), steps=12)


@pytest.fixture(scope="module")
def two_servers(tiny_model: Path):
    servers = [EngineServer(tiny_model, **SERVER_KW) for _ in range(2)]
    try:
        for s in servers:
            s.start(wait=False)  # both load at once
        for s in servers:
            s.wait_healthy()
        yield servers
    finally:
        for s in servers:
            s.stop()


@pytest.fixture
def plain_template(tmp_path: Path):
    p = tmp_path / "plain.toml"
    p.write_text('name = "plain_test"\nversion = 1\nformat = "plain"\nprompt = "{{ seed.text }}"\n'
                 'max_tokens = 24\n[output]\nkind = "text"\nmin_chars = 1\n')  # fmt: skip
    return load_template(p)


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / GENERATIONS).read_text().splitlines()]


def _engine_pids() -> set[int]:
    """PIDs of vLLM processes (API servers, engine cores, guards) on this machine, by command line."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"vllm.entrypoints" in cmd or b"engine_guard.py" in cmd or cmd.startswith(b"VLLM::"):
                out.add(int(entry))
    return out


def test_generate_with_own_server_then_it_is_gone(tiny_model: Path, corpus: Path, tmp_path: Path, plain_template):
    """The run starts a local vLLM server, every request gets a record with a reason, and the server's whole
    process group is gone when the run ends."""
    seen: list[list[int]] = []
    before = _engine_pids()
    stem_qa = load_template(REPO / "synth" / "templates" / "stem_qa.toml")

    def on_record(rec: dict) -> None:
        if not seen:
            seen.append(sorted(_engine_pids() - before))

    s = generate(sample_seeds(corpus, 6), [plain_template, stem_qa], tiny_model, tmp_path / "out", count=6,
                 sampling=SAMPLING, server_kwargs=SERVER_KW, progress=False, on_record=on_record)  # fmt: skip
    recs = _records(tmp_path / "out")
    assert len(recs) == 6 and s["ok"] + s["rejected"] == 6
    assert all(r["status"] == "ok" or r["reason"] for r in recs)
    assert s["completion_tokens"] > 0 and all(r["completion_tokens"] > 0 for r in recs)
    assert {r["template"] for r in recs} == {"plain_test", "stem_qa"}
    assert len(seen[0]) >= 3  # guard + API server + engine core, at least, while running
    assert not (set(seen[0]) & _engine_pids()), "vLLM processes left after the run ended"


def test_failing_run_stops_its_server(tiny_model: Path, corpus: Path, tmp_path: Path, plain_template):
    before = _engine_pids()

    def boom(rec: dict) -> None:
        raise RuntimeError("downstream failure")

    with pytest.raises(RuntimeError, match="downstream failure"):
        generate(sample_seeds(corpus, 4), [plain_template], tiny_model, tmp_path / "out", count=4,
                 sampling=SAMPLING, server_kwargs=SERVER_KW, progress=False, on_record=boom)  # fmt: skip
    assert _engine_pids() <= before


KILLED_RUN = """
import sys, json, pathlib
sys.path.insert(0, {repo!r})
from synth.run import generate
from synth.seeds import sample_seeds
from synth.templates import load_template
generate(sample_seeds({corpus!r}, 30), [load_template({tpl!r})], {model!r}, {out!r}, count=30,
         sampling={sampling!r}, server_kwargs={kw!r}, progress=False, max_concurrency=2)
"""


def test_killed_run_leaves_no_server_and_resumes_without_resending(tiny_model: Path, corpus: Path, tmp_path: Path,
                                                                    plain_template, two_servers):  # fmt: skip
    out = tmp_path / "out"
    before = _engine_pids()
    code = KILLED_RUN.format(repo=str(REPO), corpus=str(corpus), tpl=plain_template.path, model=str(tiny_model),
                             out=str(out), sampling={"max_tokens": 24}, kw=SERVER_KW)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline:
            n = len((out / GENERATIONS).read_bytes().splitlines()) if (out / GENERATIONS).exists() else 0
            if n >= 5 or proc.poll() is not None:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        started = _engine_pids() - before
        proc.send_signal(signal.SIGKILL)  # no cleanup code of the run gets to run
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    t0 = time.monotonic()
    while started & _engine_pids() and time.monotonic() - t0 < 30:
        time.sleep(0.2)
    assert started, "the killed run had started no server"
    assert not (started & _engine_pids()), "the killed run's vLLM processes outlived it"
    done_before = {json.loads(line)["key"] for line in (out / GENERATIONS).read_bytes().splitlines() if
                   line.endswith(b"}")}  # fmt: skip
    assert 5 <= len(done_before) < 30
    sent_prompts: list[str] = []
    s = generate(sample_seeds(corpus, 30), [plain_template], tiny_model, out, count=30, sampling={"max_tokens": 24},
                 servers=[srv.url for srv in two_servers], progress=False,
                 on_record=lambda r: sent_prompts.append(r["key"]))  # fmt: skip
    assert s["skipped"] == len(done_before) and s["sent"] == 30 - len(done_before)
    assert not (set(sent_prompts) & done_before), "a finished request was sent again"
    keys = [r["key"] for r in _records(out)]
    assert len(keys) == len(set(keys)) == 30


def test_two_servers_share_the_load_and_a_dead_one_costs_nothing(tiny_model: Path, corpus: Path, tmp_path: Path,
                                                                 plain_template, two_servers):  # fmt: skip
    a, b = two_servers
    killed: list[int] = []

    def kill_b(rec: dict) -> None:
        if not killed and len(_records(tmp_path / "out")) >= 4:
            killed.extend(b.pids())
            os.killpg(b.proc.pid, signal.SIGKILL)  # the whole server, mid-run

    s = generate(sample_seeds(corpus, 30), [plain_template], tiny_model, tmp_path / "out", count=24,
                 sampling={"max_tokens": 16}, servers=[a.url, b.url], progress=False, max_concurrency=2,
                 on_record=kill_b, client_kwargs={"backoff_s": 0.05, "down_s": 0.5})  # fmt: skip
    recs = _records(tmp_path / "out")
    assert killed and not process_group_members(b.proc.pid)
    assert len(recs) == 24 and not [r for r in recs if r["reason"] == "request_error"], s["reasons"]
    by_server = {r["server"] for r in recs}
    assert by_server == {a.url, b.url}, s["servers"]
    assert sum(r["server"] == a.url for r in recs) > 12  # a took over b's share after b died
