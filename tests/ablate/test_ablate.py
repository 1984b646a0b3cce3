"""`python -m flows.ablate` on two real candidates that differ on purpose: a corpus of English prose (the docstrings
of Python's standard library, shipped with the interpreter) and the same documents with their words shuffled into
noise, both as o200k_harmony shards. The proxy trained on the prose must score lower bits per byte on the prose's
held-out documents; the results, the curves and the `ablations` view must hold one row per proxy and set."""

from __future__ import annotations

import ast
import random
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from flows.ablate import main
from tests.ablate.proxy import TINY_PROXY
from tests.trainer.trainer_shards import write_manifest


def stdlib_docstrings(min_chars: int = 200) -> list[str]:
    """Module, class and function docstrings of the standard library's top-level modules (real English prose)."""
    docs = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= min_chars:
                    docs.append(doc)
    return docs


def o200k_run(run: Path, texts: list[str]) -> Path:
    """A run folder whose `shards/general/manifest.json` holds `texts` in o200k_harmony, as a stage packs them."""
    from sharding.tokenizer import load_tokenizer

    tok = load_tokenizer("o200k_harmony")
    ids, sizes = tok.encode_batch_np(texts)
    eot = np.full(len(texts), tok.eot_id, dtype=np.uint32)
    packed = np.insert(ids, np.cumsum(sizes), eot)  # each document followed by end-of-text
    write_manifest(run / "shards" / "general", packed, seq_len=1024, tokenizer=tok.describe())
    return run


@pytest.fixture(scope="module")
def ablation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ablate")
    docs = stdlib_docstrings()
    rng = random.Random(0)
    noise = []
    for doc in docs:
        words = doc.split()
        rng.shuffle(words)
        noise.append(" ".join(words))
    prose, shuffled = o200k_run(tmp / "prose", docs), o200k_run(tmp / "shuffled", noise)
    proxy = tmp / "proxy.toml"
    proxy.write_text(TINY_PROXY, encoding="utf-8")
    out = tmp / "out"
    argv = [
        "--candidates",
        f"{prose},{shuffled}",
        "--tokens",
        "40000",
        "--proxy",
        str(proxy),
        "--eval",
        "heldout",
        "--eval-items",
        "30",
        "--heldout-fraction",
        "0.1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    return out


def test_prose_proxy_beats_shuffled_proxy_on_held_out_prose(ablation: Path) -> None:
    import pyarrow.parquet as pq

    rows = pq.read_table(ablation / "results.parquet").to_pylist()
    bpb = {(r["candidate"], r["eval_set"]): r["bpb"] for r in rows}
    assert len(rows) == 4, rows  # 2 candidates x 1 seed x 2 held-out slices
    assert bpb["prose", "heldout:prose"] < bpb["shuffled", "heldout:prose"] - 0.05, bpb
    assert all(r["tokens"] >= 40000 and r["proxy_tokenizer"] == "utf8_bytes" for r in rows), rows
    assert len({r["proxy_config_sha256"] for r in rows}) == 1


def test_ablations_view_and_curves(ablation: Path) -> None:
    from flows.query import connect

    con = connect(ablation)
    n, candidates = con.execute("SELECT count(*), count(DISTINCT candidate) FROM ablations").fetchall()[0]
    assert (n, candidates) == (4, 2)
    steps = con.execute("SELECT candidate, max(step) FROM ablation_curves GROUP BY 1 ORDER BY 1").fetchall()
    assert steps == [("prose", 40), ("shuffled", 40)], steps  # ceil(40000 / (8 x 128)) steps, logged every 5
