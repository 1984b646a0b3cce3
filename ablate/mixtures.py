"""Mixtures over one finished run's corpus (`python -m flows.ablate --mixtures FILE`), or over each of several
runs (`--candidates RUN_A,RUN_B --mixtures FILE`: every mixture realised on every run, so that runs are compared
at the same composition): the file, checked when loaded, and each mixture sampled into the proxy's training shards
the way a stage realises its `[mixture]`.

The mixtures file::

    run = "runs/general"         # the finished run whose corpus/docs every mixture samples (relative to this file)
    [mixtures.default.domains]   # one [mixtures.<name>] table per candidate: a stage's [mixture] table
    web = 0.6
    code = 0.2
    stem = 0.2
    [mixtures.code_heavy.domains]
    code = 0.8
    web = 0.2
    [mixtures.no_gsm8k.sources.gsm8k]
    weight = 0.0

A mixture takes the keys of a stage's `[mixture]` (sharding/mixture.py) but `seed`, `total_tokens` and
`rehydrate`: every mixture is sampled into the ablation's one token budget with one seed (`SAMPLE_SEED`), so the
mixtures differ in their weights only. The shares are of proxy tokens (UTF-8 bytes for the CPU proxy).

Realisation is the stage's own: `plan_budget` turns the weights into a budget per source (water-filling under
`max_repeats`), `select_documents` takes whole passes and a seeded sample, and the selected documents are read in
a seeded shuffled order. Held-out documents (a hash of the text, `is_heldout`) are never trained on; up to
`eval_items` of them per domain are the `heldout:<domain>` evaluation sets that score every mixture
(`heldout:<run name>:<domain>` per run when the mixtures are over several runs; one document held out of one run
is held out of every run).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ablate.config import NAME_PATTERN, AblationConfigError, MixtureCandidate
from ablate.corpus import (
    BYTES_TOKENIZER,
    CandidateData,
    ProxyTokenizer,
    encode_rows,
    is_heldout,
    load_sample,
    write_sample,
)
from core.io import atomic_write_json, fingerprint

SAMPLE_SEED = 0  # the document sample and order of every mixture (the proxies' seeds are --seeds')
MIXTURE_KEYS = ("domains", "sources", "max_repeats")
_FILE_KEYS = ("run", "mixtures")


def run_partitions(run: Path) -> dict[str, str]:
    """source -> domain of a finished run's corpus, from its Hive folders (`corpus/docs/domain=d/source=s/`).

    Raises:
        AblationConfigError: not a finished run (no published corpus documents).
    """
    docs = run / "corpus" / "docs"
    found = {
        part.name.removeprefix("source="): part.parent.name.removeprefix("domain=")
        for part in sorted(docs.glob("domain=*/source=*"))
        if any(part.glob("*.parquet"))
    }
    if not found:
        raise AblationConfigError(
            f"run {run}: no corpus documents under {docs}/domain=*/source=*/ (finish it with `python -m flows.stage`)"
        )
    return found


def load_mixtures(path: Path, runs: list[str] | None = None) -> tuple[Path | None, tuple[MixtureCandidate, ...]]:
    """The run and the named mixtures of a mixtures file (module docstring), every table checked.

    Args:
        runs: `--candidates` with `--mixtures`: `RUN_DIR` or `NAME=RUN_DIR` specs (a shards manifest names its run);
            every mixture is then applied to every run, named `<run name>.<mixture>` and scored on every run's
            held-out slices, and the file's `run` is not read (the returned run is None).

    Raises:
        AblationConfigError: one line naming the file, the mixture and the key.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise AblationConfigError(f"{path}: no such mixtures file") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise AblationConfigError(f"{path}: not a valid TOML file ({e})") from e
    unknown = sorted(set(data) - set(_FILE_KEYS))
    if unknown:
        raise AblationConfigError(f"{path}: unknown key(s) {unknown}; allowed: {', '.join(_FILE_KEYS)}")
    if runs is None and not isinstance(data.get("run"), str):
        raise AblationConfigError(f'{path}: run = "RUN_DIR" (the finished run the mixtures sample) is required')
    run = (Path(path).parent / data["run"]).resolve() if runs is None else None
    tables = data.get("mixtures", {})
    if not isinstance(tables, dict):
        raise AblationConfigError(f"{path}: 'mixtures' must hold [mixtures.<name>] tables")
    out = []
    for label, run_dir in [("", run)] if run is not None else _named_runs(runs or []):
        partitions = run_partitions(run_dir)
        for name, table in tables.items():
            where = f"{path}: [mixtures.{name}]" + (f" over {label} ({run_dir})" if label else "")
            check_mixture(where, name, table, partitions)
            out.append(MixtureCandidate(f"{label}.{name}" if label else name, run_dir, table, run_label=label))
    return run, tuple(out)


def _named_runs(specs: list[str]) -> list[tuple[str, Path]]:
    """(name, run folder) of `RUN_DIR`, `RUN_DIR/shards/<stage>/manifest.json` or `NAME=` either.

    Raises:
        AblationConfigError: a bad name, or one run named twice.
    """
    named = []
    for spec in specs:
        name, _, where = spec.rpartition("=")
        run = Path(where).expanduser().resolve()
        run = run.parents[2] if run.name == "manifest.json" and len(run.parents) > 2 else run
        name = name or run.name
        if not NAME_PATTERN.match(name):
            raise AblationConfigError(f"run name {name!r}: use letters, digits, '_', '-' or '.' (NAME=RUN_DIR)")
        named.append((name, run))
    runs = [r for _n, r in named]
    if len(set(runs)) != len(runs):
        raise AblationConfigError(f"--candidates names one run twice ({', '.join(specs)}): mixtures would repeat")
    return named


def check_mixture(where: str, name: str, table: Any, partitions: dict[str, str]) -> None:
    """One named mixture's table against the stage's `[mixture]` rules and the run's domains and sources.

    Raises:
        AblationConfigError: `where` and the key at fault.
    """
    from sharding.mixture import MixtureConfig

    if not NAME_PATTERN.match(name):
        raise AblationConfigError(f"{where}: name {name!r}: use letters, digits, '_', '-' or '.'")
    if not isinstance(table, dict):
        raise AblationConfigError(f"{where}: must be a table (domains, sources, max_repeats)")
    for key in table:
        if key not in MIXTURE_KEYS:
            why = "every mixture is sampled into --tokens with one seed" if key != "rehydrate" else "not supported"
            raise AblationConfigError(f"{where} {key}: not an ablation mixture key ({why}); allowed: {MIXTURE_KEYS}")
    try:
        mix = MixtureConfig.from_dict(table)
    except (TypeError, ValueError) as e:
        raise AblationConfigError(f"{where}: {e}") from e
    for source in mix.sources:
        if source not in partitions:
            raise AblationConfigError(f"{where} sources.{source}: no such source in the run ({sorted(partitions)})")
    present = set(partitions.values())
    wanted = [d for d, w in mix.domains.items() if w > 0 and d in present]
    if not any(mix.weight(s) > 0 and mix.cap(s) > 0 for s, d in partitions.items() if d in wanted):
        raise AblationConfigError(
            f"{where} domains: no source of the run has weight > 0 (the run's domains: {sorted(present)})"
        )


@dataclass
class RunCorpus:
    """A run's documents as the mixtures sample them.

    Args:
        sha256: the corpus fingerprint (`sharding.pack.list_chunks`: names and bytes of its files).
        texts: the training documents (not held out), in corpus order.
        docs: their source, domain and proxy-token length (a `sharding.pack.DocTable` without token positions:
            the texts are re-encoded when written).
        heldout: domain -> up to `heldout_docs` held-out documents.
        heldout_fraction: share of documents held out.
    """

    sha256: str
    texts: Any
    docs: Any
    heldout: dict[str, list[str]]
    heldout_fraction: float


def load_run_corpus(run: Path, tok: ProxyTokenizer, heldout_fraction: float, heldout_docs: int) -> RunCorpus:
    """Read `run/corpus/docs` once: training documents with their proxy-token lengths, and held-out ones per domain.

    NOTE: every training text is held in memory (a pyarrow string array), and a proxy tokenizer other than
    utf8_bytes encodes every document once here to know its length (and again when it is sampled).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from sharding.chunks import list_chunks
    from sharding.doc_table import DocTable

    chunks, sha = list_chunks(run / "corpus" / "docs", f"ablate:{tok.name}")
    texts, sources, domains = [], [], []
    heldout: dict[str, list[str]] = {}
    for c in chunks:
        t = pq.ParquetFile(c.path).read_row_group(c.row_group, columns=["text", "source", "domain"])
        held = np.array([is_heldout(x, heldout_fraction) for x in t.column("text").to_pylist()], dtype=bool)
        for text, domain in zip(
            t.column("text").filter(held).to_pylist(), t.column("domain").filter(held).to_pylist()
        ):
            if len(heldout.setdefault(domain, [])) < heldout_docs:
                heldout[domain].append(text)
        kept = t.filter(pa.array(~held))
        texts += kept.column("text").chunks
        sources += kept.column("source").chunks
        domains += kept.column("domain").chunks
    text = pa.chunked_array(texts, pa.large_string()).combine_chunks()
    if tok.name == BYTES_TOKENIZER:
        lengths = pc.binary_length(text).to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        lengths = np.array([len(tok.encode_np(x)) for x in text.to_pylist()], dtype=np.int64)

    def codes(arrays: list) -> tuple[np.ndarray, list[str]]:
        enc = pa.chunked_array(arrays, pa.string()).combine_chunks().dictionary_encode()
        return enc.indices.to_numpy(zero_copy_only=False).astype(np.int32), enc.dictionary.to_pylist()

    (src, src_names), (dom, dom_names) = codes(sources), codes(domains)
    zeros = np.zeros(len(lengths), np.int64)
    docs = DocTable(
        ids=None,
        source=src,
        domain=dom,
        source_names=src_names,
        domain_names=dom_names,
        lengths=lengths,
        chunk=zeros.astype(np.int32),  # no token positions: the texts are encoded again when sampled
        offset=zeros,
    )
    return RunCorpus(sha, text, docs, heldout, heldout_fraction)


def shares_table(shares: dict[str, float], corpus: RunCorpus) -> dict[str, Any]:
    """The `[mixture]` table whose plan gives each source `shares[source]` of the tokens: a domain's weight is its
    sources' shares summed, and a source's weight within it is its share over its available tokens (the stage
    splits a domain in proportion to weight x available)."""
    from sharding.doc_table import available_by_source

    available = {s: (d, t) for (d, s), (_n, t) in available_by_source(corpus.docs).items()}
    domains: dict[str, float] = {}
    sources: dict[str, dict[str, float]] = {}
    for source, share in shares.items():
        domain, tokens = available[source]
        domains[domain] = domains.get(domain, 0.0) + share
        sources[source] = {"weight": share / tokens}
    top = max((w["weight"] for w in sources.values()), default=1.0) or 1.0
    return {"domains": domains, "sources": {s: {"weight": w["weight"] / top} for s, w in sources.items()}}


def prepare_mixture(
    cand: MixtureCandidate, corpus: RunCorpus, out_dir: Path, tok: ProxyTokenizer, tokens: int, seq_len: int
) -> tuple[CandidateData, dict[str, dict[str, float]]]:
    """Sample one mixture into `tokens` training tokens (whole `seq_len` rows); reuse `out_dir` when it holds the
    same sample.

    Returns:
        (the proxy's data, the realised shares of its training tokens: {"domains": {...}, "sources": {...}}).
    """
    from sharding.doc_table import available_by_source
    from sharding.mixture import MixtureConfig, plan_budget
    from sharding.pack import seeded_rng, select_documents

    table = shares_table(cand.source_shares, corpus) if cand.source_shares is not None else cand.table
    key = fingerprint_mixture(corpus, table, tok, tokens, seq_len)
    cached, saved = load_sample(out_dir, key), out_dir / "mixture.json"
    if cached is not None and saved.is_file():
        return cached, json.loads(saved.read_text(encoding="utf-8"))["shares"]
    mix = MixtureConfig.from_dict({**table, "total_tokens": sample_budget(tokens, seq_len), "seed": SAMPLE_SEED})
    plan = plan_budget(available_by_source(corpus.docs), mix)
    picked, _repeats, realised = select_documents(corpus.docs, {r.source: r.budget for r in plan}, SAMPLE_SEED)
    order = picked[seeded_rng(SAMPLE_SEED, "order").permutation(picked.size)]
    flat = encode_rows(_texts(corpus.texts, order), tok, tokens, seq_len, f"mixture {cand.name!r} of {cand.run}")
    shares = realised_shares(plan, realised)
    # Before the manifest, which write_sample writes last: a sample is reused only when both are there.
    atomic_write_json(saved, {"table": table, "shares": shares})
    inputs = {"corpus_sha256": corpus.sha256, "config_sha256": key}
    return write_sample(out_dir, flat, seq_len, tok, [], "ablation", inputs, str(cand.run)), shares


def sample_budget(tokens: int, seq_len: int) -> int:
    """The tokens a mixture's plan selects for `tokens` training tokens in whole `seq_len` rows: a quarter more than
    the rows hold, since a source's fractional pass stops short of its budget by up to one document, and the rows
    take a prefix of the shuffled selection (the same shares, in expectation)."""
    rows = math.ceil(tokens / seq_len) * seq_len
    return rows + max(seq_len, rows // 4)


def _texts(texts: Any, order: np.ndarray, batch: int = 1024) -> Iterator[str]:
    """`texts[i]` for i in `order`, taken a batch at a time (the reader stops early once the rows are full)."""
    import pyarrow as pa

    for start in range(0, order.size, batch):
        yield from texts.take(pa.array(order[start : start + batch])).to_pylist()


def fingerprint_mixture(
    corpus: RunCorpus, table: dict[str, Any], tok: ProxyTokenizer, tokens: int, seq_len: int
) -> str:
    return fingerprint(
        "ablate-mixture-v1",
        corpus.sha256,
        corpus.heldout_fraction,
        table,
        tok.describe(),
        tokens,
        seq_len,
        SAMPLE_SEED,
    )


def realised_shares(plan: list[Any], realised: dict[str, int]) -> dict[str, dict[str, float]]:
    """Each domain's and source's share of the selected tokens (what the regression of `--search` reads)."""
    total = sum(realised.values()) or 1
    sources = {r.source: realised.get(r.source, 0) / total for r in plan}
    domains: dict[str, float] = {}
    for r in plan:
        domains[r.domain] = domains.get(r.domain, 0.0) + sources[r.source]
    return {"domains": domains, "sources": sources}
