"""Recall and false redactions of `SecretRedactor` on the planted labelled set of `tests/filters/secrets_eval.py`.

Hosts: the 410 source files of ../shared/corpora/code_permissive (or $CORPUSFORGE_CORPORA) and the YAML, JSON
and INI files that prefect and spacy ship (with `.env` files built from the YAML keys). Each case plants one
credential, look-alike or placeholder line. Prints one markdown row per (label, kind): cases, redacted, and the
rate (recall for secrets, false-redaction rate for the others), for `--seeds` seeds, with and without the
document path (the path marks `.env` / INI / YAML files, where bare values count).

Usage: .venv/bin/python -m benchmarks.bench_secrets [--per-kind 30] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

from core.paths import REPO_ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    from filters.secrets import SecretRedactor
    from tests.filters import secrets_eval

    corpora = Path(os.environ.get("CORPUSFORGE_CORPORA", REPO_ROOT.parent / "shared" / "corpora"))
    path = corpora / "code_permissive" / "code_files.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} not found: set CORPUSFORGE_CORPORA to the shared corpora directory")
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    hosts = secrets_eval.code_hosts(rows) + secrets_eval.config_hosts()
    redactor = SecretRedactor()
    host_fp = sum(bool(redactor.redact(text, p)[1]) for _, p, text in hosts)
    total: Counter[tuple[str, str]] = Counter()
    redacted: dict[bool, Counter[tuple[str, str]]] = {True: Counter(), False: Counter()}
    missed: list[str] = []
    seconds, n_cases = 0.0, 0
    for seed in args.seeds:
        cases = secrets_eval.build_cases(hosts, per_kind=args.per_kind, seed=seed)
        n_cases += len(cases)
        for use_path in (True, False):
            t0 = time.perf_counter()
            score = secrets_eval.score(cases, redactor, use_path=use_path)
            seconds += time.perf_counter() - t0
            redacted[use_path].update(score.redacted)
            if use_path:
                total.update(score.total)
                missed += [f"{c.id}@seed{seed}" for c in score.missed]
    print(
        f"{len(hosts)} host files ({dict(Counter(h[0] for h in hosts))}); {host_fp} of them have a redaction "
        f"before planting; seeds {args.seeds}, {args.per_kind} cases per kind and format; "
        f"{n_cases} cases per pass, {2 * n_cases / seconds:,.0f} cases/s"
    )
    print()
    print("| label | kind | cases | redacted (path known) | rate | redacted (no path) | rate |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label in ("secret", "lookalike", "placeholder"):
        keys = sorted(k for k in total if k[0] == label)
        for key in keys + [(label, "all")]:
            n = sum(total[k] for k in keys) if key[1] == "all" else total[key]
            a = sum(redacted[True][k] for k in keys) if key[1] == "all" else redacted[True][key]
            b = sum(redacted[False][k] for k in keys) if key[1] == "all" else redacted[False][key]
            name = f"**{key[1]}**" if key[1] == "all" else key[1]
            print(f"| {label} | {name} | {n} | {a} | {a / n:.4f} | {b} | {b / n:.4f} |")
    print()
    print(f"Missed (path known): {missed or 'none'}")


if __name__ == "__main__":
    main()
