"""Generated tokens/s: our synth step vs the bare vLLM engine, vs transformers `generate`, two servers vs one.

    .venv/bin/python benchmarks/bench_synth.py [--requests 32] [--max-tokens 64] [--model HF_DIR]

Same prompts, same `max_tokens`, `ignore_eos` (every request generates exactly `max_tokens`), the same sampling
(temperature 0.8, top_p 1: the templates default to top_p 0.95, a full sort of the vocabulary per token on CPU),
fixed seeds. "bare engine" posts the requests straight to the server with httpx at the same
concurrency; "generate" is `synth.run.generate` (templates, checks, JSONL records, fsync) against the same
server; "synth step" is the stage's `SynthStep` run by `run_step` (the same requests in one unit, plus its
journal, documents, lineage and generations table). Server start time is reported apart and not counted.
Needs `.venv-engine` (bash scripts/bootstrap_engine.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _prompts(n: int) -> list[str]:
    from tests.synth.tiny_model import training_texts

    texts = training_texts()
    return [texts[i % len(texts)][(i * 97) % 400 :][:300] for i in range(n)]


async def _bare(url: str, model: str, prompts: list[str], max_tokens: int, concurrency: int) -> tuple[int, float]:
    import httpx

    sem = asyncio.Semaphore(concurrency)
    tokens = 0

    async def one(i: int, client: httpx.AsyncClient) -> None:
        nonlocal tokens
        async with sem:
            r = await client.post(
                f"{url}/v1/completions",
                json={
                    "model": model,
                    "prompt": prompts[i],
                    "max_tokens": max_tokens,
                    "ignore_eos": True,
                    "seed": i,
                    "temperature": 0.8,
                },
            )
            tokens += r.json()["usage"]["completion_tokens"]

    t0 = time.monotonic()
    async with httpx.AsyncClient(timeout=600, trust_env=False) as client:
        await asyncio.gather(*(one(i, client) for i in range(len(prompts))))
    return tokens, time.monotonic() - t0


def _ours(
    urls: list[str], model_dir: Path, prompts: list[str], max_tokens: int, concurrency: int, name: str
) -> tuple[int, float]:
    from synth.run import generate
    from synth.seeds import Seed
    from synth.templates import load_template

    with tempfile.TemporaryDirectory() as d:
        tpl = Path(d) / "bench.toml"
        tpl.write_text(
            'name = "bench"\nversion = 1\nformat = "plain"\nprompt = "{{ seed.text }}"\n'
            "temperature = 0.8\ntop_p = 1.0\n"
        )  # the bare rows' sampling: the same work
        seeds = [Seed(f"p{i}", p, "web") for i, p in enumerate(prompts)]
        s = generate(
            seeds,
            [load_template(tpl)],
            model_dir,
            Path(d) / "out",
            servers=urls,
            count=len(seeds),
            sampling={"max_tokens": max_tokens, "ignore_eos": True, "temperature": 0.8},
            progress=False,
            max_concurrency=concurrency,
            served_model_name=name,
        )
        return s["completion_tokens"], s["seconds"]


def _step(
    urls: list[str], model_dir: Path, prompts: list[str], max_tokens: int, concurrency: int
) -> tuple[int, float]:
    import json

    from pipeline.layout import RunLayout
    from pipeline.runner import run_step
    from synth.plan import model_sha256
    from synth.seeds import Seed
    from synth.step import JOURNAL_DIR, SynthStep
    from synth.templates import load_template

    with tempfile.TemporaryDirectory() as d:
        tpl = Path(d) / "bench.toml"
        tpl.write_text(
            'name = "bench"\nversion = 1\nformat = "plain"\nprompt = "{{ seed.text }}"\n'
            "temperature = 0.8\ntop_p = 1.0\n"
        )  # the bare rows' sampling: the same work
        seeds = [Seed(f"p{i}", p, "web") for i, p in enumerate(prompts)]
        params = {
            "count": len(seeds),
            "seed": 0,
            "batch_size": len(seeds),
            "max_concurrency": concurrency,
            "sampling": {"max_tokens": max_tokens, "ignore_eos": True, "temperature": 0.8},
        }
        layout = RunLayout(Path(d) / "run")
        model = {"path": str(model_dir), "sha256": model_sha256(model_dir)}
        step = SynthStep(params, seeds, [load_template(tpl)], model, layout.synth / JOURNAL_DIR, urls)
        t0 = time.monotonic()
        run_step(step, layout)
        seconds = time.monotonic() - t0
        tokens = sum(
            json.loads(line)["completion_tokens"]
            for j in (layout.synth / JOURNAL_DIR).glob("*.jsonl")
            for line in j.read_text().splitlines()
        )
        return tokens, seconds


def _transformers(model_dir: Path, prompts: list[str], max_tokens: int, batch: int) -> tuple[int, float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokens = 0
    t0 = time.monotonic()
    for i in range(0, len(prompts), batch):
        enc = tok(prompts[i : i + batch], return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=max_tokens,
                min_new_tokens=max_tokens,
                do_sample=True,
                temperature=0.8,
                pad_token_id=tok.pad_token_id,
            )
        tokens += (out.shape[1] - enc.input_ids.shape[1]) * out.shape[0]
    return tokens, time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--model", type=Path, default=None, help="HF folder (default: the tiny trained model)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-two", action="store_true", help="skip the two-server row (one more start)")
    args = parser.parse_args(argv)
    from synth.server import EngineServer
    from tests.synth.tiny_model import build_tiny_model

    model_dir = args.model or build_tiny_model(REPO / "benchmarks" / "out" / "tiny_model", steps=12)
    prompts = _prompts(args.requests)
    name = "corpusforge-synth"  # the name the synth step sends
    kw = {"dtype": "float32", "max_model_len": 1024, "kv_cache_gib": 1, "served_model_name": name}
    rows = []
    with EngineServer(model_dir, **kw) as a:
        print(f"server start: {a.start_seconds:.1f} s")
        asyncio.run(_bare(a.url, name, prompts[:4], 8, 4))  # warm-up
        bare, ours, step = [], [], []
        for _ in range(args.repeats):  # interleaved, so a slow spell of the machine hits every row alike
            bare.append(asyncio.run(_bare(a.url, name, prompts, args.max_tokens, args.concurrency)))
            ours.append(_ours([a.url], model_dir, prompts, args.max_tokens, args.concurrency, name))
            step.append(_step([a.url], model_dir, prompts, args.max_tokens, args.concurrency))
        rows.append(("vLLM server, bare HTTP", bare))
        rows.append(("vLLM server, synth.run.generate", ours))
        rows.append(("vLLM server, synth step (run_step)", step))
        if not args.skip_two:
            with EngineServer(model_dir, **kw) as b:
                two = [
                    _ours([a.url, b.url], model_dir, prompts, args.max_tokens, args.concurrency, name)
                    for _ in range(args.repeats)
                ]
            rows.append(("2 vLLM servers, synth.run.generate", two))
    rows.append(("transformers generate (batch 8)", [_transformers(model_dir, prompts, args.max_tokens, 8)]))
    med = {name: statistics.median(t / s for t, s in runs) for name, runs in rows}
    base = med["vLLM server, bare HTTP"]
    print(f"\n{args.requests} requests x {args.max_tokens} tokens, concurrency {args.concurrency}/server\n")
    print("| path | generated tok/s (median) | vs bare engine |")
    print("|---|---:|---:|")
    for name, _ in rows:
        print(f"| {name} | {med[name]:.1f} | {med[name] / base:.2f}x |")
    for label in ("vLLM server, synth.run.generate", "vLLM server, synth step (run_step)"):
        print(f"\n{label} overhead vs bare engine: {(1 - med[label] / base) * 100:.1f}% (goal <= 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
