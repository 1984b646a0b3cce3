"""synth without vLLM: seeds, templates, request planning, resume, and the client's spreading and failover
against fake OpenAI-compatible servers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from synth.client import EngineClient
from synth.plan import plan_requests, read_done
from synth.run import GENERATIONS, generate
from synth.seeds import Seed, sample_seeds
from synth.templates import TemplateError, load_template, load_templates


def test_seeds_reproducible_filtered_and_prefix_stable(corpus: Path):
    a = sample_seeds(corpus, 8, seed=1)
    assert [s.id for s in a] == [s.id for s in sample_seeds(corpus, 8, seed=1)]
    assert [s.id for s in a] != [s.id for s in sample_seeds(corpus, 8, seed=2)]
    # A larger sample keeps the smaller one as its prefix; batch size does not matter.
    assert [s.id for s in sample_seeds(corpus, 12, seed=1, batch_rows=3)][:8] == [s.id for s in a]
    stem_fr = sample_seeds(corpus, 50, seed=0, domains=["stem"], langs=["fr"])
    assert stem_fr and all(s.domain == "stem" and s.lang == "fr" for s in stem_fr)
    assert len(stem_fr) == 3  # doc ids 0..29 with i%3==1 and i%4==0: 4, 16, 28
    long_only = sample_seeds(corpus, 50, min_chars=140)
    assert long_only and all(len(s.text) >= 140 for s in long_only)
    assert Seed("x", "t", "web", "fr").lang_name == "French"
    with pytest.raises(FileNotFoundError, match="no corpus Parquet"):
        sample_seeds(corpus / "nope", 3)


def test_seeds_of_a_run_directory_come_from_its_documents_only(tmp_path: Path):
    """A run directory also holds lineage, the ingested copy of every document and step outputs: seeds come from
    corpus/docs alone, each document once."""
    import shutil

    from tests.synth.conftest import write_corpus

    run = tmp_path / "run"
    write_corpus(run / "corpus", n=30)
    shutil.copytree(run / "corpus" / "docs", run / "corpus" / "ingested")  # the same ids again
    shutil.copytree(run / "corpus" / "docs", run / "steps" / "final" / "units" / "u0" / "docs")
    for where in (run, run / "corpus", run / "corpus" / "docs"):
        assert sorted(s.id for s in sample_seeds(where, 100)) == [f"doc{i:03d}" for i in range(30)]
    # Two copies of one file in a plain folder of documents: each document is still one seed.
    shutil.copy(
        run / "corpus" / "docs" / "domain=web" / "part-0.parquet",
        run / "corpus" / "docs" / "domain=web" / "copy.parquet",
    )
    assert len(sample_seeds(run, 100)) == 30


def test_shipped_templates_render_in_their_format():
    templates = {t.name: t for t in load_templates()}
    assert set(templates) >= {
        "textbook_section",
        "stem_qa",
        "instruction_response",
        "code_exercise",
        "multilingual_passage",
    }
    seed = Seed("d1", "La déclaration universelle des droits de l'homme.", "web", "fr")
    prompt, values = templates["multilingual_passage"].render(seed, "k1")
    assert "Write only in\nFrench" in prompt or "Write only in French" in prompt
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    assert templates["multilingual_passage"].render(seed, "k1") == (prompt, values)  # same key, same draw
    p2, _ = templates["instruction_response"].render(seed, "k1")
    assert p2.startswith("<|start|>system<|message|>") and p2.endswith("<|start|>assistant<|channel|>final<|message|>")
    body = templates["stem_qa"].request_body("P", 7, {"max_tokens": 9, "stop": ["\n\n"]})
    assert body["structured_outputs"]["json"]["required"] == ["question", "steps", "final_answer"]
    assert body["stop"] == ["<|im_end|>", "\n\n"] and body["max_tokens"] == 9 and body["seed"] == 7


def test_generation_checks_give_reasons():
    t = {t.name: t for t in load_templates()}
    qa, text = t["stem_qa"], t["textbook_section"]
    good = json.dumps({"question": "q?", "steps": ["a"], "final_answer": "4"})
    assert qa.check(good, "stop") == (None, json.loads(good))
    assert qa.check("  ", "stop")[0] == "empty"
    assert qa.check(good[:-3], "length")[0] == "truncated"
    assert qa.check("{not json", "stop")[0] == "unparsable"
    assert qa.check(json.dumps({"question": "q", "steps": [], "final_answer": "4"}), "stop")[0] == "schema_violation"
    assert text.check("short", "stop")[0] == "too_short"
    assert text.check("x" * 50, "stop")[0] is None


@pytest.mark.parametrize(
    "body, match",
    [
        ('name = "t"\nversion = 1\nformat = "alpaca"\nprompt = "x"', "format must be one of"),
        ('name = "t"\nversion = 1\nformat = "plain"', "missing key 'prompt'"),
        ('name = "t"\nversion = 1\nformat = "plain"\nprompt = "{{ x"', "not valid Jinja"),
        (
            'name = "t"\nversion = 1\nformat = "plain"\nprompt = "x"\n[output]\nkind = "json"',
            "needs an \\[output.schema\\]",
        ),
        (
            'name = "t"\nversion = 1\nformat = "plain"\nprompt = "x"\n[output]\nkind = "json"\nschema = {type = 5}',
            "not a valid JSON schema",
        ),
    ],
)
def test_bad_template_is_one_line_error(tmp_path: Path, body: str, match: str):
    p = tmp_path / "t.toml"
    p.write_text(body)
    with pytest.raises(TemplateError, match=match):
        load_template(p)


def test_plan_is_deterministic_and_extends(corpus: Path):
    seeds = sample_seeds(corpus, 9)
    templates = load_templates(["textbook_section", "code_exercise"])
    a = plan_requests(seeds, templates, 10, seed=3, model_id="m")
    assert [r.key for r in a] == [r.key for r in plan_requests(seeds, templates, 10, seed=3, model_id="m")]
    assert [r.key for r in plan_requests(seeds, templates, 14, seed=3, model_id="m")][:10] == [r.key for r in a]
    assert len({r.key for r in a}) == 10
    assert not {r.key for r in a} & {r.key for r in plan_requests(seeds, templates, 10, seed=3, model_id="other")}
    assert all(r.seed.domain == "code" for r in a if r.template.name == "code_exercise")


def test_read_done_cuts_a_torn_line(tmp_path: Path):
    p = tmp_path / GENERATIONS
    p.write_bytes(b'{"key": "a"}\n{"key": "b"}\n{"key": "c", "te')
    assert read_done(p) == {"a", "b"}
    assert p.read_bytes() == b'{"key": "a"}\n{"key": "b"}\n'


def test_generate_spreads_resumes_and_never_resends(corpus: Path, fake_engines, fake_model: Path, tmp_path: Path):
    e1, e2 = fake_engines(), fake_engines()
    seeds = sample_seeds(corpus, 12)
    templates = load_templates(["textbook_section", "multilingual_passage"])
    out = tmp_path / "out"
    s1 = generate(seeds, templates, fake_model, out, servers=[e1.url, e2.url], count=8, progress=False)
    assert s1["ok"] == 8 and s1["skipped"] == 0
    assert e1.prompts and e2.prompts and len(e1.prompts) + len(e2.prompts) == 8
    first = {json.loads(line)["key"] for line in (out / GENERATIONS).read_text().splitlines()}
    # A larger count: only the new requests are sent.
    s2 = generate(seeds, templates, fake_model, out, servers=[e1.url, e2.url], count=12, progress=False)
    assert s2["skipped"] == 8 and s2["sent"] == 4 and len(e1.prompts) + len(e2.prompts) == 12
    recs = [json.loads(line) for line in (out / GENERATIONS).read_text().splitlines()]
    assert len(recs) == len({r["key"] for r in recs}) == 12 and first <= {r["key"] for r in recs}
    r = recs[0]
    assert r["model_sha256"] and r["template_version"] == 1 and r["seed_doc_id"] and "seed" in r["sampling"]


def test_failover_and_error_records(corpus: Path, fake_engines, fake_model: Path, tmp_path: Path):
    dead = fake_engines(lambda body: (500, {"error": "boom"}))
    alive = fake_engines()
    seeds = sample_seeds(corpus, 6)
    t = load_templates(["textbook_section"])
    s = generate(
        seeds,
        t,
        fake_model,
        tmp_path / "a",
        servers=[dead.url, alive.url],
        count=6,
        progress=False,
        client_kwargs={"backoff_s": 0.01, "down_s": 0.05},
    )
    assert s["ok"] == 6  # every request that met the broken server went to the other one
    bad = fake_engines(lambda body: (400, {"error": "prompt too long"}))
    s = generate(seeds, t, fake_model, tmp_path / "b", servers=[bad.url], count=3, progress=False)
    recs = [json.loads(line) for line in (tmp_path / "b" / GENERATIONS).read_text().splitlines()]
    assert s["rejected"] == 3 and {r["reason"] for r in recs} == {"request_error"}
    assert all(r["attempts"] == 1 and r["error"].startswith("http_400") for r in recs)  # 4xx: not retried
    assert len(bad.prompts) == 3


def test_client_gives_up_after_max_attempts_on_refused_connections():
    async def run() -> list:
        # Port 9 on loopback: nothing listens, every attempt is refused.
        async with EngineClient(["http://127.0.0.1:9"], "m", max_attempts=3, backoff_s=0.01, down_s=0.01) as c:
            return [await c.complete({"prompt": "x", "max_tokens": 1})]

    (res,) = asyncio.run(run())
    assert res.error.startswith("connect_error") and res.attempts == 3
