"""The whole-stage benchmark's input (benchmarks/bench_stage.py): the same documents for both sides, written once
as JSONL (one folder per domain), and the stage config our side runs, a copy of configs/stages/general.toml with
only what datatrove also does.

Documents: the real texts of ../shared/corpora (UDHR, lingua sentences as paragraphs, clickbait headlines in lists
of 20, GSM8K and its socratic twin, MATH, MMLU-STEM, 410 source files), in a seeded order; one document in ten is
a planted near-duplicate (3% of its words replaced) of an earlier one, so MinHash has clusters to find. Beyond one
pass over the texts, documents are further copies with 30% of their words replaced by words of the same text
(5-gram Jaccard ~0.1: not near-duplicates), so every step's work grows with the input.
"""

from __future__ import annotations

import copy
import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

from benchmarks.harness import corpora_jsonl
from core.paths import REPO_ROOT, STAGES_DIR

GENERAL = STAGES_DIR / "general.toml"
DOMAINS = ("web", "stem", "code")
PROSE = ("gopher_repetition", "gopher_quality", "c4", "fineweb")
BANDS, ROWS = 14, 8  # FineWeb's reference, datatrove's MinhashConfig default
NEAR_DUP_SHARE, NEAR_DUP_EDIT, COPY_EDIT = 0.1, 0.03, 0.3


# --- documents -------------------------------------------------------------------------------------------


def real_texts() -> list[tuple[str, str]]:
    """(domain, text) of every real text used, exact repeats removed, in a fixed order."""
    rows: list[tuple[str, str]] = []
    for f in ("multilingual_udhr/udhr_full_selected.jsonl", "multilingual_udhr/udhr_article1.jsonl"):
        rows += [("web", r["text"]) for r in corpora_jsonl(f)]
    by_lang: dict[str, list[str]] = {}
    for r in corpora_jsonl("multilingual_lingua_testdata/lingua_testdata_sample.jsonl"):
        if r["kind"] == "sentences":
            by_lang.setdefault(r["lang"], []).append(r["text"])
    for _, texts in sorted(by_lang.items()):  # paragraphs of 6 sentences, 2 per line (as bench_filters)
        for j in range(0, len(texts), 6):
            chunk = texts[j : j + 6]
            rows.append(("web", "\n".join(" ".join(chunk[k : k + 2]) for k in range(0, len(chunk), 2))))
    heads = corpora_jsonl("quality_clickbait_headlines/clickbait_headlines_sample.jsonl")
    rows += [("web", "\n".join(r["text"] for r in heads[j : j + 20])) for j in range(0, len(heads), 20)]
    for name in ("gsm8k_test", "gsm8k_test_socratic"):
        rows += [("stem", f"{r['question']}\n\n{r['answer']}") for r in corpora_jsonl(f"stem_math/{name}.jsonl")]
    for name in ("math500_test", "math_test_sample_not_in_math500"):
        rows += [("stem", f"{r['problem']}\n\n{r['solution']}") for r in corpora_jsonl(f"stem_math/{name}.jsonl")]
    rows += [
        ("stem", r["question"] + "\n" + "\n".join(f"- {c}" for c in r["choices"]))
        for r in corpora_jsonl("stem_math/mmlu_stem_test.jsonl")
    ]
    rows += [("code", r["content"]) for r in corpora_jsonl("code_permissive/code_files.jsonl")]
    seen: set[str] = set()
    return [(d, t) for d, t in rows if t.strip() and not (t in seen or seen.add(t))]


def edit_words(text: str, rate: float, rng: random.Random) -> str:
    """Replace `rate` of the words by other words of the same text; whitespace (lines, indentation) is kept."""
    parts = re.split(r"(\s+)", text)
    words = [k for k in range(0, len(parts), 2) if parts[k]]
    if not words:
        return text
    pool = [parts[k] for k in words]
    for k in rng.sample(words, max(1, round(rate * len(words)))):
        parts[k] = rng.choice(pool)
    return "".join(parts)


def stage_documents(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """`n` documents (id, domain, text): see the module docstring."""
    rng = random.Random(seed)
    bases = real_texts()
    rng.shuffle(bases)
    docs: list[tuple[str, str, str]] = []
    c = 0
    for i in range(n):
        if docs and rng.random() < NEAR_DUP_SHARE:
            _, domain, text = docs[rng.randrange(len(docs))]
            text = edit_words(text, NEAR_DUP_EDIT, rng)
        else:
            domain, text = bases[c % len(bases)]
            if c >= len(bases):
                text = edit_words(text, COPY_EDIT, rng)
            c += 1
        docs.append((f"d{i:07d}", domain, text))
    return docs


def build_input(root: Path, n: int, parts: int, seed: int = 0) -> dict[str, Any]:
    """Write the documents once under `root/input-<n>/<domain>/part-NNN.jsonl` (reused when complete)."""
    inp = root / f"input-{n}-s{seed}-p{parts}"
    stamp = inp / "_INPUT.json"
    if stamp.is_file():
        return json.loads(stamp.read_text())
    shutil.rmtree(inp, ignore_errors=True)
    docs = stage_documents(n, seed)
    info: dict[str, Any] = {"dir": str(inp), "docs": n, "bytes": 0, "by_domain": {}}
    for domain in DOMAINS:
        rows = [(i, t) for i, d, t in docs if d == domain]
        (inp / domain).mkdir(parents=True)
        step = -(-len(rows) // parts) if rows else 1
        for k in range(parts):
            with open(inp / domain / f"part-{k:03d}.jsonl", "w", encoding="utf-8") as f:
                for doc_id, text in rows[k * step : (k + 1) * step]:
                    f.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")
        info["by_domain"][domain] = len(rows)
    info["bytes"] = sum(p.stat().st_size for p in inp.rglob("*.jsonl"))
    (inp / "sources.toml").write_text(
        "".join(
            f'[[source]]\nname = "bench-{d}"\ndomain = "{d}"\nformat = "jsonl"\npath = "{d}/*.jsonl"\n'
            f'license = "LicenseRef-bench"\n\n'
            for d in DOMAINS
        ),
        encoding="utf-8",
    )
    stamp.write_text(json.dumps(info))
    return info


# --- the stage config (a copy of general.toml) ---------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for these values (no control characters)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as a TOML value")


def dump_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Scalars, lists of scalars and nested tables (what a stage file holds, minus arrays of tables)."""
    scalars = [f"{k} = {_toml_value(v)}\n" for k, v in data.items() if not isinstance(v, dict)]
    out = (f"[{prefix}]\n" if prefix and (scalars or not data) else "") + "".join(scalars)
    for k, v in data.items():
        if isinstance(v, dict):
            out += ("\n" if out else "") + dump_toml(v, f"{prefix}.{k}" if prefix else k)
    return out


def stage_config(dest: Path, sources: Path, filters: str) -> Path:
    """configs/stages/general.toml with the filters both sides have, MinHash at 14 x 8, no exact dedup and no
    decontamination (datatrove's pipeline has neither), shards as the stage has them, and no `[scorers]` (datatrove
    runs no model scorer: the same work on both sides), except with `filters = "prose+scorers"`: the prose filters and
    general's scorers as they ship (the fastText classifier, the sampled perplexity scorer), an extra row of ours."""
    from core.stage_files import read_stage_file
    from filters.chain import FILTERS

    base = read_stage_file(GENERAL)[0]  # general.toml merged on its base file: every table written out below
    cfg = copy.deepcopy(base)
    cfg["sources"] = str(sources.resolve())
    filters, _, extra = filters.partition("+")
    if extra not in ("", "scorers"):
        raise ValueError(f"filters = {filters}+{extra}: the only addition is +scorers")
    cfg["filters"] = {name: {"enabled": False} for name in FILTERS}
    if extra != "scorers":
        cfg.pop("scorers", None)
    if filters == "prose":
        for name in PROSE:  # datatrove runs every filter on every document
            cfg["filters"][name] = {**base["filters"].get(name, {}), "domains": list(DOMAINS)}
    cfg["dedup"] = {
        "exact": {"enabled": False},
        "minhash": {**base["dedup"]["minhash"], "num_bands": BANDS, "rows_per_band": ROWS},
    }
    cfg["decontam"] = {"enabled": False}
    if "train" in base:
        cfg["train"] = {"config": str((GENERAL.parent / base["train"]["config"]).resolve())}
    for scorer in cfg.get("scorers", {}).values():  # a classifier folder, relative to general.toml as the trainer
        if "model" in scorer:  # a perplexity scorer names no folder (its model is the SmolLM2 export)
            scorer["model"] = str((GENERAL.parent / scorer["model"]).resolve())
    dest.write_text(
        f"# bench_stage.py: a copy of {GENERAL.relative_to(REPO_ROOT)} (filters={filters}{'+' + extra if extra else ''})\n"
        + dump_toml(cfg),
        encoding="utf-8",
    )
    return dest
