"""A stage with `[synth]` against scripted fake servers, shared by the synth tests: the answers (real copies,
truncations, paragraphs of sentences written for these tests), the stage config, and running it inline."""

from __future__ import annotations

import random
import time
from pathlib import Path

from pipeline.layout import RunLayout
from pipeline.runner import run_step
from stage.run import run_stage
from tests.flows.corpus_fixture import PARAGRAPHS, write_corpus, write_stage_config

# Sentences written for this test; a fake generation strings six of them together.
SENTENCES = [
    "Water boils at a lower temperature on a high mountain because the air pressure there is lower.",
    "A lever lets a small force lift a heavy load when the load sits close to the pivot.",
    "Plants turn light, water and carbon dioxide into sugar and release oxygen into the air.",
    "The area of a rectangle is its length multiplied by its width, measured in square units.",
    "Sound travels faster through water than through air, and faster still through solid steel.",
    "A fraction can be simplified by dividing the top and the bottom by their greatest common divisor.",
    "Ice floats on water because it is less dense than the liquid it forms from.",
    "The moon shows phases because we see different parts of its sunlit half as it circles the earth.",
    "An electric circuit needs a closed loop so that the current can flow from the battery and back.",
    "Prime numbers have exactly two divisors, one and the number itself, and two is the only even one.",
    "Rust forms when iron reacts with oxygen and moisture over a long period of time.",
    "A triangle's inner angles always add up to one hundred and eighty degrees on a flat surface.",
    "Bees carry pollen from flower to flower, which helps the plants produce seeds and fruit.",
    "The speed of an object is the distance it covers divided by the time it takes to cover it.",
    "Salt dissolves in water, and the solution freezes at a lower temperature than pure water does.",
    "Mountains form over millions of years when plates of the earth's crust push against each other.",
    "A thermometer works because the liquid inside it expands as it warms and shrinks as it cools.",
    "Multiplying a number by ten moves each of its digits one place to the left.",
    "Clouds are made of tiny drops of water or ice that are light enough to stay up in the air.",
    "A magnet attracts iron and nickel, and two north poles push each other away.",
    "The heart pumps blood through the arteries to every part of the body and back through the veins.",
    "An average is found by adding the values together and dividing by how many values there are.",
    "Glass is made by melting sand at a very high temperature and letting it cool quickly.",
    "A shadow is longest in the early morning and the late afternoon, when the sun is low.",
]


def _reply(body: dict, i: int) -> tuple[int, dict]:
    """The i-th answer: every fourth copies a real document (exact dedup must drop it), every fourth+1 is cut
    off by max_tokens (rejected as truncated), the others are paragraphs of six sentences of their own (the
    first eight answers hold four distinct ones)."""
    if i % 4 == 0:
        text, finish = PARAGRAPHS[3], "stop"
    elif i % 4 == 1:
        text, finish = "Chapter one. " + " ".join(random.Random(i).sample(SENTENCES, 3)), "length"
    else:
        block = ((i // 4) * 2 + i % 4 - 2) % 4
        text, finish = " ".join(SENTENCES[6 * block : 6 * block + 6]), "stop"
    return 200, {
        "choices": [{"text": text, "finish_reason": finish}],
        "usage": {"prompt_tokens": 50, "completion_tokens": len(text.split())},
    }


def scripted_engine(fake_engines, delay_s: float = 0.0):
    """A fake vLLM server (the `fake_engines` fixture) that answers the i-th request with `_reply(body, i)`."""
    calls = {"n": 0}

    def reply(body: dict) -> tuple[int, dict]:
        i = calls["n"]  # arrival order: each kind of answer comes a fixed number of times
        calls["n"] += 1
        if delay_s:
            time.sleep(delay_s)
        return _reply(body, i)

    return fake_engines(reply)


def synth_stage_config(root: Path, model: Path, url: str, count: int) -> Path:
    """The flow tests' corpus and stage config under `root`, plus a `[synth]` table of `count` generations."""
    sources = write_corpus(root)
    cfg = write_stage_config(root, sources)
    cfg.write_text(
        cfg.read_text()
        + f"""
[synth]
model = "{model}"
count = {count}
templates = ["textbook_section"]
servers = ["{url}"]
batch_size = 3
max_concurrency = 2
"""
    )
    return cfg


def run_stage_at(cfg_path: Path, out: Path) -> dict:
    """`run_stage` of the general stage in `cfg_path`, inline (no Prefect), into `out`."""
    from ingest.sources import load_sources
    from stage.config import load_stage_config

    cfg = load_stage_config("general", cfg_path)
    layout = RunLayout(out)
    return run_stage(cfg, load_sources(cfg.sources), layout, lambda step: run_step(step, layout))
