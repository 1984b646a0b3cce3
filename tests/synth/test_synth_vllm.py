"""Real vLLM (CPU) end to end: serve, generate, annotate, kill and resume, two servers.

Slow (each server start is ~30-170 s on 2 shared cores): two servers of SmolLM2-135M-Instruct (the real model set-up
exports, synth/models.py) start when the module begins and are shared by every test that needs a running server;
they load while the README's stage trains the model its verbatim `flows.synth` command serves (that command starts
and stops a server of its own, as a user's run does). Only the tests about a run's own server start one more.
Skipped without `.venv-engine`.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synth.models import exported_model
from synth.run import GENERATIONS, generate
from synth.seeds import sample_seeds
from synth.server import ENGINE_VENV, EngineServer, process_group_members
from synth.templates import load_template
from tests.synth.readme_synth import ReadmeSynthPaths, readme_synth_command, run_readme_stage_and_export

ENGINE_MISSING = "vLLM engine not installed: run `bash scripts/bootstrap_engine.sh`"
if not (ENGINE_VENV / "bin" / "python").is_file() and os.environ.get("CORPUSFORGE_REQUIRE_ENGINE") == "1":
    # CI sets this: there a missing engine is a failure, not a quiet skip.
    raise RuntimeError(ENGINE_MISSING)
pytestmark = pytest.mark.skipif(not (ENGINE_VENV / "bin" / "python").is_file(), reason=ENGINE_MISSING)
REPO = Path(__file__).resolve().parents[2]
SERVER_KW = {"max_model_len": 2048, "kv_cache_gib": 1}  # SmolLM2 in bf16, as exported


@pytest.fixture(scope="module")
def smollm2() -> Path:
    """SmolLM2-135M-Instruct as `bash scripts/bootstrap_engine.sh` exported it (models/built/)."""
    return exported_model("smollm2")


@pytest.fixture(scope="module")
def loading_servers(smollm2: Path):
    """Two SmolLM2 servers, launched and not waited for: they load while the module's first fixtures work."""
    servers = [EngineServer(smollm2, **SERVER_KW) for _ in range(2)]
    try:
        for s in servers:
            s.start(wait=False)
        yield servers
    finally:
        for s in servers:
            s.stop()


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory, loading_servers) -> ReadmeSynthPaths:
    """The README's `flows.stage general --train-steps N` (on 25 records per default source; 3 steps, not the
    README's 20: the output layer over o200k's 201,088 rows makes each step 5-15 s here) and `trainer.export_hf`: a
    trained o200k_harmony model folder that vLLM serves. The shared servers load meanwhile (`loading_servers`:
    the two waits overlap instead of adding up)."""
    return run_readme_stage_and_export(tmp_path_factory.mktemp("readme"), limit=25, train_steps=3)


@pytest.fixture(scope="module")
def two_servers(loading_servers):
    for s in loading_servers:
        s.wait_healthy()
    return loading_servers


@pytest.fixture
def plain_template(tmp_path: Path):
    p = tmp_path / "plain.toml"
    p.write_text(
        'name = "plain_test"\nversion = 1\nformat = "plain"\nprompt = "{{ seed.text }}"\n'
        'max_tokens = 24\n[output]\nkind = "text"\nmin_chars = 1\n'
    )
    return load_template(p)


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / GENERATIONS).read_text().splitlines()]


def _wait_gone(members, timeout_s: float) -> list[int]:
    """Poll `members()` until it is empty or `timeout_s` passed; return what is left."""
    deadline = time.monotonic() + timeout_s
    left = members()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = members()
    return left


def _describe(pids) -> list[str]:
    out = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
            out.append(f"{pid} state={stat[0].decode()} ppid={int(stat[1])} {cmd.decode(errors='replace')}")
        except OSError:
            out.append(f"{pid} (gone)")
    return out


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


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


def _annotate(run: Path, rubric: str, count: int, out: Path, servers: list[EngineServer]) -> dict:
    """`python -m flows.annotate` with the default model (no --model) against the running servers; its summary."""
    cmd = [sys.executable, "-m", "flows.annotate", "--from", str(run), "--rubric", rubric, "--count", str(count)]
    cmd += ["--servers", ",".join(s.url for s in servers), "--out", str(out), "--json"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return json.loads(res.stdout)


def test_annotate_labels_a_stratified_sample_with_smollm2_and_full_provenance(
    readme_run: ReadmeSynthPaths, two_servers, smollm2: Path, tmp_path: Path
):
    """Issue 20: `flows.annotate` on the README stage's corpus (real text of many languages and sources) with the
    default model, SmolLM2 through the real engine: N rows, each a label the rubric allows, with the rubric's
    version and sha256, the model's sha256 and the sampling; a second rubric joins the folder. (Resuming from the
    journal: tests/annotate.) (First in the module: its `readme_run` trains while the shared servers load.)"""
    from annotate.rubrics import label_values, load_rubric
    from flows.query import connect
    from synth.plan import model_sha256

    out = tmp_path / "annotations"
    before = _engine_pids()
    counts = {"educational_value": 6, "topic": 4}
    for rubric, n in counts.items():
        summary = _annotate(readme_run.general, rubric, n, out, two_servers)
        assert summary["sampled"] == n and summary["sent"] == n, summary
        cost = summary["cost"]  # the engine's usage counts: the cost a person reads in annotate.json
        assert cost["requests"] == n and cost["prompt_tokens"] > 50 * n and cost["completion_tokens"] >= n, cost
    assert not (_engine_pids() - before)  # with --servers the command starts no engine
    rows = (
        connect(out)
        .execute(
            "SELECT doc_id, rubric, rubric_version, rubric_sha256, label, model, model_sha256, sampling, "
            "finish_reason, fate, domain, lang, source FROM annotations"
        )
        .fetchall()
    )
    assert sorted(r[1] for r in rows) == ["educational_value"] * 6 + ["topic"] * 4
    corpus_ids = {i for (i,) in connect(readme_run.general).execute("SELECT id FROM docs").fetchall()}
    weights = model_sha256(smollm2)
    for doc_id, rubric, version, sha, label, model, model_sha, sampling, finish, fate, *_stratum in rows:
        assert doc_id in corpus_ids
        assert (version, sha) == (1, load_rubric(rubric).sha256)
        assert fate == "labelled" and finish == "stop" and label in label_values(load_rubric(rubric)), (fate, label)
        assert model == str(smollm2.resolve()) and model_sha == weights
        assert json.loads(sampling)["temperature"] == 0.0 and "seed" in json.loads(sampling)
    # Stratified: the six documents of one rubric come from six (domain, language, source) strata.
    assert len({tuple(r[10:]) for r in rows if r[1] == "educational_value"}) == 6


def test_the_engine_gives_the_perplexity_scorer_s_numbers(two_servers, smollm2: Path, tmp_path: Path):
    """Issue 20, item 4 (the GPU engine's path, run here on the CPU engine): a perplexity scorer with `servers`
    scores through vLLM (`prompt_logprobs` of the same token ids) what the scorer's own forward pass scores, on novel
    excerpts and their words in another order, and ranks them the same way."""
    from filters.scorer import ScorerFilter
    from schemas import Document
    from scoring.config import ScorerConfig
    from tests.scoring.test_perplexity import _novel_passages

    # Two passages and their reordered words, 32 tokens each: vLLM's CPU engine computes prompt log-probabilities
    # slowly (~5 s a request here; 8 requests of 64 tokens took 43 s of the suite).
    prose = _novel_passages(2)
    texts = prose + [" ".join(sorted(t.split())) for t in prose]  # the same words in another order
    table = {"kind": "perplexity", "max_tokens": 32}
    engine_table = {**table, "servers": [s.url for s in two_servers], "served_model": two_servers[0].model_name}
    scores = {}
    for side, t in (("local", table), ("engine", engine_table)):
        docs = [Document(id=str(i), text=x, source="s", domain="web", lang="en") for i, x in enumerate(texts)]
        assert ScorerFilter(ScorerConfig.from_table("t: [scorers.ppl]", "ppl", t, tmp_path)).filter_batch(docs)
        scores[side] = [d.scores["ppl"] for d in docs]
    print("1/perplexity engine vs local:", [f"{e:.4f}/{x:.4f}" for e, x in zip(scores["engine"], scores["local"])])
    # Both run the bf16 weights with different kernels (vLLM's CPU attention and matmuls against torch's); a
    # difference of 0.1 nats per token (~10% in perplexity; 0.03 measured) is far below what separates prose from
    # its reordered words (2-3 nats here).
    for e, x in zip(scores["engine"], scores["local"]):
        assert abs(math.log(e) - math.log(x)) < 0.1, (e, x)
    assert min(scores["engine"][:2]) > max(scores["engine"][2:])


# Added to the flow tests' stage config (which decontaminates against a mini evaluation set). 24 tokens of a
# 135M model are fragments: the quality filters that would drop all of them are off here; language ID (at any
# score), the URL and word blocklists, toxicity, PII and secrets still run on every generation, and so do exact and
# MinHash dedup and decontamination.
SYNTH_TABLES = """
[filters.gopher_quality]
enabled = false
[filters.gopher_repetition]
enabled = false
[filters.c4]
enabled = false
[filters.fineweb]
enabled = false
[synth]
max_concurrency = 4
batch_size = 4
# A plain prompt rarely ends within 24 tokens: common stop strings let some generations finish (and be kept).
sampling = { max_tokens = 24, stop = ["e", "\\n"] }
server = { max_model_len = 2048, kv_cache_gib = 1 }
"""


def test_flows_synth_end_to_end_on_real_vllm_into_the_reasoning_shards(
    smollm2: Path, tmp_path: Path, plain_template, two_servers
):
    """`python -m flows.synth --servers` on a finished stage: seeds -> generations (the module's running vLLM
    server) -> filters -> dedup against the seed run -> decontamination -> reasoning shards, and the provenance
    query returns each synthetic document's seed."""
    from flows.query import connect
    from tests.flows.corpus_fixture import EVAL_QUESTION, write_corpus, write_stage_config
    from tests.synth.scripted_stage import run_stage_at

    seed_root = tmp_path / "seed"
    seed_cfg = write_stage_config(seed_root, write_corpus(seed_root, contaminate_with=EVAL_QUESTION))
    seed_run = tmp_path / "general"
    run_stage_at(seed_cfg, seed_run)
    cfg = tmp_path / "synth-stage.toml"
    base = (
        seed_cfg.read_text()
        .replace('stage = "general"', 'stage = "reasoning"')
        .replace("min_score = 0.65", "min_score = 0.0")
    )
    cfg.write_text(base + SYNTH_TABLES)  # o200k_harmony: the README model's tokenizer
    out = tmp_path / "reasoning"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    cmd = [
        sys.executable,
        "-m",
        "flows.synth",
        "--from",
        str(seed_run),
        "--model",
        str(smollm2),
        "--count",
        "8",
        "--out",
        str(out),
        "--templates",
        f"{plain_template.path},stem_qa",
        "--config",
        str(cfg),
        "--json",
        "--servers",
        two_servers[0].url,
    ]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    con = connect(out)
    rows = con.execute(
        "SELECT s.doc_id, s.seed_doc_id, s.template, s.model_sha256, s.fate, s.completion_tokens "
        "FROM synthetic s ORDER BY s.key"
    ).fetchall()
    assert len(rows) == 8 and {r[2] for r in rows} == {"plain_test", "stem_qa"}
    assert all(r[5] > 0 for r in rows) and len({r[3] for r in rows}) == 1
    # Each seed is a document of the seed run (its corpus, by id).
    seed_ids = {i for (i,) in connect(seed_run).execute("SELECT id FROM docs").fetchall()}
    assert {r[1] for r in rows} <= seed_ids
    # Every generation went through the pipeline: a kept one is in the corpus and its tokens in the reasoning
    # shards; any other has the reason it was dropped in the lineage.
    kept = [r[0] for r in rows if r[4] == "kept"]
    assert kept, [r[4] for r in rows]
    placed = con.execute(
        "SELECT count(DISTINCT p.doc_id) FROM shards p JOIN synthetic s ON s.doc_id = p.doc_id "
        "WHERE p.stage = 'reasoning'"
    ).fetchone()[0]
    assert placed >= 1
    for doc_id, *_, fate, _ in rows:
        steps = {a for (a,) in con.execute("SELECT action FROM lineage WHERE doc_id = ?", [doc_id]).fetchall()}
        assert ("kept" in steps) if fate == "kept" else ("dropped" in steps)
    # The seed run's documents come first: none of them was dropped as a duplicate of a generation.
    lost = con.execute(
        "SELECT count(*) FROM lineage l JOIN ingested i ON i.id = l.doc_id WHERE l.action = 'dropped' "
        "AND l.reason LIKE '%dedup_duplicate' AND i.source LIKE 'corpus-%' AND l.dup_cluster_id IN "
        "(SELECT doc_id FROM synthetic)"
    ).fetchone()[0]
    assert lost == 0


def test_a_run_that_fails_while_its_servers_start_leaves_no_process(
    smollm2: Path, corpus: Path, tmp_path: Path, plain_template
):
    """The run fails after launching two local servers, before they answer (their start times out): both are
    stopped with every process they had started. (A run that ends normally: the flows.synth test; a killed
    one: the next test.)"""
    import threading

    from synth.server import EngineError

    before = _engine_pids()
    seen: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.update(_engine_pids() - before)
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with pytest.raises(EngineError, match="not healthy after"):
            generate(
                sample_seeds(corpus, 4),
                [plain_template],
                smollm2,
                tmp_path / "out",
                count=4,
                num_local_servers=2,
                server_kwargs={**SERVER_KW, "start_timeout_s": 6},
                progress=False,
            )
    finally:
        stop.set()
        watcher.join()
    assert len(seen) >= 2, "no vLLM process was started"
    assert not (seen & _engine_pids()), "a vLLM process outlived the failed run"


KILLED_RUN = """
import sys, json, pathlib
sys.path.insert(0, {repo!r})
from synth.run import generate
from synth.seeds import sample_seeds
from synth.templates import load_template
generate(sample_seeds({corpus!r}, 30), [load_template({tpl!r})], {model!r}, {out!r}, count=30, servers={servers!r},
         sampling={sampling!r}, server_kwargs={kw!r}, progress=False, max_concurrency=2)
"""


def _start_killed_run(model: Path, corpus: Path, out: Path, template, servers: list[str] | None):
    code = KILLED_RUN.format(
        repo=str(REPO),
        corpus=str(corpus),
        tpl=template.path,
        model=str(model),
        out=str(out),
        servers=servers,
        sampling={"max_tokens": 24},
        kw=SERVER_KW,
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO)


def _kill_when(proc: subprocess.Popen, ready, timeout_s: float = 400) -> None:
    """SIGKILL `proc` (no cleanup code of it gets to run) as soon as `ready()` holds; fail if it ended first."""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not ready() and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_run_killed_while_its_server_starts_leaves_no_process(
    smollm2: Path, corpus: Path, tmp_path: Path, plain_template
):
    """A run with a local server of its own, SIGKILLed while that server loads: the guard takes the whole server
    down (API server, engine core) although the run's own cleanup never ran."""
    before = _engine_pids()
    proc = _start_killed_run(smollm2, corpus, tmp_path / "out", plain_template, servers=None)
    seen: set[int] = set()

    def server_loading() -> bool:
        seen.update(_engine_pids() - before)
        return any(b"vllm.entrypoints" in _cmdline(pid) for pid in seen)

    _kill_when(proc, server_loading)
    time.sleep(1.0)  # what the server started in the meantime (its engine core) is its too
    seen.update(_engine_pids() - before)
    left = _wait_gone(lambda: sorted(seen & _engine_pids()), timeout_s=30)
    assert seen, "the killed run had started no server"
    assert not left, f"the killed run's vLLM processes outlived it: {_describe(left)}"


def test_killed_run_resumes_without_resending(
    smollm2: Path, corpus: Path, tmp_path: Path, plain_template, two_servers
):
    """SIGKILLed after 5 generations (against a running server): the journal keeps them, the rerun sends only
    the rest and the result has every request once."""
    out = tmp_path / "out"
    journal = out / GENERATIONS
    proc = _start_killed_run(smollm2, corpus, out, plain_template, servers=[two_servers[0].url])
    _kill_when(proc, lambda: journal.exists() and len(journal.read_bytes().splitlines()) >= 5)
    done_before = {json.loads(line)["key"] for line in journal.read_bytes().splitlines() if line.endswith(b"}")}
    assert 5 <= len(done_before) < 30
    sent_prompts: list[str] = []
    s = generate(
        sample_seeds(corpus, 30),
        [plain_template],
        smollm2,
        out,
        count=30,
        sampling={"max_tokens": 24},
        servers=[srv.url for srv in two_servers],
        progress=False,
        on_record=lambda r: sent_prompts.append(r["key"]),
    )
    assert s["skipped"] == len(done_before) and s["sent"] == 30 - len(done_before)
    assert not (set(sent_prompts) & done_before), "a finished request was sent again"
    keys = [r["key"] for r in _records(out)]
    assert len(keys) == len(set(keys)) == 30


def test_readme_synthesis_commands_on_the_default_tokenizer(readme_run: ReadmeSynthPaths, tmp_path: Path):
    """The README's `flows.synth --from runs/general --model runs/general/hf --count N --out runs/reasoning`,
    verbatim after its stage and export, on o200k_harmony: the run starts its own vLLM server,
    writes one synthetic row with provenance per request, and leaves no vLLM process behind (issue 23 item 1)."""
    from flows.query import connect

    before = _engine_pids()
    out = tmp_path / "reasoning"
    res = subprocess.run(
        readme_synth_command(readme_run, out, count=2),
        cwd=REPO,
        env=readme_run.env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert not (_engine_pids() - before), "the run's vLLM processes outlived it"
    rows = (
        connect(out)
        .execute("SELECT seed_doc_id, template, model_sha256, fate, completion_tokens FROM synthetic ORDER BY key")
        .fetchall()
    )
    assert len(rows) == 2 and all(r[4] > 0 for r in rows), rows
    seed_ids = {i for (i,) in connect(readme_run.general).execute("SELECT id FROM docs").fetchall()}
    assert {r[0] for r in rows} <= seed_ids and len({r[2] for r in rows}) == 1
    assert all(r[3] for r in rows)  # each kept, or dropped with its reason


def test_two_servers_share_the_load_and_a_dead_one_costs_nothing(
    smollm2: Path, corpus: Path, tmp_path: Path, plain_template, two_servers
):
    a, b = two_servers
    killed: list[int] = []

    answered_by_b: list[str] = []

    def kill_b(rec: dict) -> None:
        if rec["server"] == b.url and rec["error"] is None:
            answered_by_b.append(rec["key"])
        # Mid-run: once b has answered (it shared the load) and a few records are written.
        if not killed and answered_by_b and len(_records(tmp_path / "out")) >= 4:
            killed.extend(b.pids())
            os.killpg(b.proc.pid, signal.SIGKILL)  # the whole server, mid-run

    s = generate(
        sample_seeds(corpus, 30),
        [plain_template],
        smollm2,
        tmp_path / "out",
        count=24,
        sampling={"max_tokens": 16},
        servers=[a.url, b.url],
        progress=False,
        max_concurrency=2,
        on_record=kill_b,
        client_kwargs={"backoff_s": 0.05, "down_s": 0.5},
    )
    recs = _records(tmp_path / "out")
    assert killed
    # SIGKILL is asynchronous: a process tearing down a large address space (the KV cache) can take a moment.
    left = _wait_gone(lambda: process_group_members(b.proc.pid), timeout_s=20)
    assert not left, f"killed server's processes still running: {_describe(left)}"
    assert len(recs) == 24 and not [r for r in recs if r["reason"] == "request_error"], s["reasons"]
    by_server = {r["server"] for r in recs}
    assert by_server == {a.url, b.url}, s["servers"]
    assert sum(r["server"] == a.url for r in recs) > 12  # a took over b's share after b died
