"""Throughput of the safety and redaction steps, with datatrove's PIIFormatter side by side.

Documents: the code files and STEM texts of ../shared/corpora, repeated `--repeats` times. Prints MB/s per step
(single process). Usage:
    flock /tmp/cf-bench.lock .venv/bin/python benchmarks/bench_safety.py --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPORA = Path(os.environ.get("CORPUSFORGE_CORPORA", ROOT.parent / "shared" / "corpora"))


def load_texts() -> list[str]:
    texts = [json.loads(ln)["content"] for ln in (CORPORA / "code_permissive" / "code_files.jsonl").open()]
    for path in sorted((CORPORA / "stem_math").glob("*.jsonl")):
        texts += ["\n".join(str(v) for v in json.loads(ln).values()) for ln in path.open()]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    from filters.pii import PIIRedactor
    from filters.secrets import SecretRedactor
    from filters.toxicity import Toxicity
    from filters.word_blocklist import WordBlocklist
    from schemas import Document

    texts = load_texts() * args.repeats
    mb = sum(len(t.encode()) for t in texts) / 1e6
    docs = [Document(id=str(i), text=t, source="b", domain="web", lang="en") for i, t in enumerate(texts)]

    def pii_formatter() -> object:
        from datatrove.pipeline.formatters import PIIFormatter

        return PIIFormatter().format  # format(text) -> text

    steps = {
        "pii (PIIRedactor)": lambda: PIIRedactor().redact,
        "secrets (SecretRedactor)": lambda: SecretRedactor().redact,
        "datatrove PIIFormatter": pii_formatter,
        "word_blocklist (en)": lambda: WordBlocklist().filter,
        "toxicity (whole doc)": lambda: Toxicity(max_chars=None).filter,
    }
    print(f"{len(docs)} documents, {mb:.1f} MB")
    print(f"{'step':28s} {'seconds':>8s} {'MB/s':>8s}")
    for name, make in steps.items():
        fn = make()
        arg_is_text = "Redactor" in name or "datatrove" in name
        t0 = time.perf_counter()
        for d in docs:
            fn(d.text if arg_is_text else d)
        dt = time.perf_counter() - t0
        print(f"{name:28s} {dt:8.2f} {mb / dt:8.1f}")


if __name__ == "__main__":
    main()
