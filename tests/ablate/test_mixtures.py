"""`python -m flows.ablate --mixtures FILE --search K` on a real two-domain run: Python's standard library as code
(its functions, docstrings removed) and as prose (its docstrings). One ablation trains every proxy once (module
fixture): a code-only and a prose-only mixture, the code-only one again under another name, and three Dirichlet
draws, then the proposed mixture. The code proxy must score better on held-out code and the prose proxy on held-out
prose; the repeated mixture must give the same numbers; the proposal must load as a stage's `[mixture]` and be
trained and measured against the fit and the draws; the report page must hold the curves, the scores and the fit.
The mixtures file's checks run without training (a one-line error, exit 2)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ablate.config import PROPOSAL
from core.io import write_table
from core.paths import REPO_ROOT
from flows.ablate import main
from schemas import DOCUMENT_SCHEMA, Document, make_doc_id
from tests.ablate.proxy import TINY_PROXY

MODULES = 40  # the standard library's first top-level modules (sorted): ~640 functions, ~200 long docstrings
TOKENS = 6000  # 6 steps of 8 x 128 bytes per proxy: about a second each on 2 free cores


def stdlib_code_and_prose(min_chars: int = 200) -> tuple[list[str], list[str]]:
    """(functions without their docstrings, docstrings) of the standard library's first `MODULES` modules."""
    code, prose = [], []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:MODULES]:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            doc = ast.get_docstring(node)
            if doc and len(doc) >= min_chars:
                prose.append(doc)
            if doc:
                node.body = node.body[1:] or [ast.Pass()]
            src = ast.unparse(node)
            if len(src) >= min_chars:
                code.append(src)
    return code, prose


def write_run(run: Path, docs: dict[tuple[str, str], list[str]]) -> Path:
    """A finished run's published corpus: `corpus/docs/domain=<d>/source=<s>/part-00000.parquet`."""
    for (domain, source), texts in docs.items():
        rows = [Document(make_doc_id(source, str(i), t), t, source, domain).to_row() for i, t in enumerate(texts)]
        path = run / "corpus" / "docs" / f"domain={domain}" / f"source={source}" / "part-00000.parquet"
        write_table(path, pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA), DOCUMENT_SCHEMA)
    return run


MIXTURES = """
run = "run"
[mixtures.code_only.domains]
code = 1.0
[mixtures.prose_only.domains]
web = 1.0
[mixtures.code_again.domains]   # code_only under another name: the same sample and initialisation
code = 1.0
"""


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("mixtures")
    code, prose = stdlib_code_and_prose()
    write_run(tmp / "run", {("code", "stdlib_functions"): code, ("web", "stdlib_docstrings"): prose})
    (tmp / "mixtures.toml").write_text(MIXTURES, encoding="utf-8")
    (tmp / "proxy.toml").write_text(TINY_PROXY, encoding="utf-8")
    out = tmp / "out"
    # The rerun of `code_only` in a fresh process (test_a_rerun_...) starts first: its start-up (imports, 5 s of
    # one core) overlaps this ablation's training instead of adding to the module's time.
    rerun = subprocess.Popen(
        [sys.executable, "-c", RERUN, str(tmp / "run"), str(tmp / "rerun"), str(TOKENS)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},  # another hash seed: set and dict orders of strings differ
    )
    argv = ["--mixtures", str(tmp / "mixtures.toml"), "--search", "3", "--tokens", str(TOKENS)]
    argv += ["--proxy", str(tmp / "proxy.toml"), "--eval", "heldout", "--eval-items", "10", "--out", str(out)]
    assert main([*argv, "--heldout-fraction", "0.1"]) == 0
    (tmp / "rerun.rc").write_text(str(rerun.wait(timeout=300)), encoding="utf-8")
    return out


def _bpb(out: Path) -> dict[tuple[str, str], float]:
    return {(r["candidate"], r["eval_set"]): r["bpb"] for r in pq.read_table(out / "results.parquet").to_pylist()}


def test_code_proxy_wins_on_code_and_prose_proxy_on_prose(searched: Path) -> None:
    bpb = _bpb(searched)
    assert bpb["code_only", "heldout:code"] < bpb["prose_only", "heldout:code"] - 0.05, bpb
    assert bpb["prose_only", "heldout:web"] < bpb["code_only", "heldout:web"] - 0.03, bpb


def test_same_mixture_and_seed_give_the_same_numbers(searched: Path) -> None:
    rows = pq.read_table(searched / "results.parquet").to_pylist()
    again = {
        r["eval_set"]: (r["bpb"], r["final_loss"], r["unique_tokens"]) for r in rows if r["candidate"] == "code_again"
    }
    first = {
        r["eval_set"]: (r["bpb"], r["final_loss"], r["unique_tokens"]) for r in rows if r["candidate"] == "code_only"
    }
    assert again == first and len(first) == 2, (first, again)
    # Every mixture fills the same rows: one budget, whatever the weights.
    assert {r["unique_tokens"] for r in rows} == {47 * 128}, {r["unique_tokens"] for r in rows}
    # The draws come from the seed alone.
    from ablate.config import SearchConfig
    from ablate.search import draw_mixtures

    partitions = {"stdlib_functions": "code", "stdlib_docstrings": "web"}
    draws = [draw_mixtures(SearchConfig(3, searched, seed=0), partitions) for _ in range(2)]
    assert draws[0] == draws[1] and draws[0] != draw_mixtures(SearchConfig(3, searched, seed=1), partitions)
    drawn = json.loads((searched / "ablation.json").read_text())["candidates"]
    assert [drawn[f"search-00{i}"]["table"] for i in range(3)] == [d.table for d in draws[0]]


RERUN = """
import sys
from pathlib import Path
from ablate.config import AblationConfig, MixtureCandidate
from ablate.run import run_ablation

run, out, tokens = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
code_only = MixtureCandidate("code_only", run, {"domains": {"code": 1.0}})
cfg = AblationConfig((code_only,), tokens, out, proxy=run.parent / "proxy.toml", eval_sets=("heldout",), eval_items=10,
                     heldout_fraction=0.1)
run_ablation(cfg, log=lambda line: None)
"""


def test_a_rerun_in_a_fresh_process_gives_the_same_numbers(searched: Path) -> None:
    """The done-when "same candidates and seeds give the same numbers on a rerun": `code_only` trained again in
    another process (the module fixture's, with another hash seed) scores bit-identically, curves included."""
    again = searched.parent / "rerun"
    assert (searched.parent / "rerun.rc").read_text(encoding="utf-8") == "0"
    keep = ("eval_set", "bpb", "final_loss", "tokens", "unique_tokens", "candidate_sha256", "mixture")

    def rows(out: Path) -> list[tuple]:
        found = [r for r in pq.read_table(out / "results.parquet").to_pylist() if r["candidate"] == "code_only"]
        return sorted(tuple(r[k] for k in keep) for r in found)

    assert rows(again) == rows(searched) and len(rows(searched)) == 2, (
        rows(again),
        rows(searched),
    )
    curves = [pq.read_table(o / "curves.parquet").to_pylist() for o in (searched, again)]
    assert [(c["step"], c["loss"]) for c in curves[0] if c["candidate"] == "code_only"] == [
        (c["step"], c["loss"]) for c in curves[1]
    ]


def test_search_proposal_loads_as_a_stage_mixture(searched: Path, tmp_path: Path) -> None:
    from sharding.mixture import MixtureConfig
    from stage.config import load_stage_config

    proposal = (searched / "mixture.toml").read_text(encoding="utf-8")
    stage_file = tmp_path / "proposed.toml"
    stage_file.write_text(
        f'stage = "general"\nbase = "{REPO_ROOT / "configs/stages/base.toml"}"\n'
        f'sources = "{REPO_ROOT / "configs/sources/default.toml"}"\n{proposal}',
        encoding="utf-8",
    )
    mixture = load_stage_config("general", stage_file).mixture
    domains = tomllib.loads(proposal)["mixture"]["domains"]
    assert mixture["domains"] == domains and abs(sum(domains.values()) - 1) < 1e-4, domains
    assert domains["stem"] == domains["books"] == 0.0 and domains["code"] > 0, domains  # every domain named
    assert MixtureConfig.from_dict(mixture).domains == domains
    fit = json.loads((searched / "search.json").read_text())
    assert len(fit["candidates"]) == 6 and fit["r2"] is not None, fit  # 3 named mixtures + 3 draws
    assert fit["proposal"]["shares"].keys() == {"code", "web"}
    rows = pq.read_table(searched / "results.parquet").to_pylist()
    assert all(r["fit_predicted"] is not None for r in rows)
    # The fit's candidates have a leave-one-out prediction; the proposal, never in the fit, has none.
    assert all((r["fit_loo_predicted"] is None) == (r["candidate"] == PROPOSAL) for r in rows)
    measured = {r["candidate"]: r["fit_measured"] for r in rows}
    bpb = _bpb(searched)
    assert measured["code_only"] == pytest.approx(
        (bpb["code_only", "heldout:code"] + bpb["code_only", "heldout:web"]) / 2
    )


def test_proposal_is_trained_and_measured_against_the_fit_and_the_draws(searched: Path) -> None:
    """After the fit the proposed mixture is trained like the draws (same budget and evaluation) and its measured
    target is recorded beside the prediction and the best draw, in results.parquet, search.json and mixture.toml."""
    prop = json.loads((searched / "search.json").read_text())["proposal"]
    bpb = _bpb(searched)
    measured = (bpb[PROPOSAL, "heldout:code"] + bpb[PROPOSAL, "heldout:web"]) / 2
    assert prop["measured"] == pytest.approx(measured) and prop["measured_seeds"] == [prop["measured"]], prop
    # Realised as proposed, up to whole documents: one stdlib function is up to ~7% of this 7.5k-byte sample.
    assert prop["realised_shares"]["code"] == pytest.approx(prop["shares"]["code"], abs=0.1), prop
    coef = json.loads((searched / "search.json").read_text())["coefficients"]
    fit_b = json.loads((searched / "search.json").read_text())["intercept"]
    predicted = fit_b + sum(coef[u] * x for u, x in prop["realised_shares"].items())
    assert prop["predicted_realised"] == pytest.approx(predicted) and prop["error"] == pytest.approx(
        measured - predicted
    )
    draws = {
        c: (bpb[c, "heldout:code"] + bpb[c, "heldout:web"]) / 2 for c in ("search-000", "search-001", "search-002")
    }
    best = min(draws, key=draws.__getitem__)
    assert (prop["best_draw"], prop["best_draw_measured"]) == (best, pytest.approx(draws[best])), (prop, draws)
    assert prop["beats_best_draw"] == (measured < draws[best])
    rows = [r for r in pq.read_table(searched / "results.parquet").to_pylist() if r["candidate"] == PROPOSAL]
    assert len(rows) == 2 and all(r["tokens"] == 6 * 8 * 128 and r["unique_tokens"] == 47 * 128 for r in rows)
    assert {(r["fit_measured"], r["fit_predicted"]) for r in rows} == {(prop["measured"], prop["predicted_realised"])}
    assert json.loads(rows[0]["mixture"])["domains"] == pytest.approx(prop["realised_shares"])
    note = (searched / "mixture.toml").read_text(encoding="utf-8")
    assert f"measured {prop['measured']:.4f}" in note and best in note
    assert f"# Asked code {prop['shares']['code']:.3f}" in note and "realised code" in note, note
    assert all(prop["shares"][u] <= prop["max_shares"][u] + 1e-9 for u in prop["shares"]), prop
    assert PROPOSAL in json.loads((searched / "ablation.json").read_text())["candidates"]


def test_report_page_and_ablations_view(searched: Path) -> None:
    from flows.query import connect

    page = (searched / "report.html").read_text(encoding="utf-8")
    for section in ("curves", "scores", "mixtures", "search"):
        assert f'<section id="{section}">' in page, section
    assert page.count("<svg") == 2 and "<script" not in page  # the curves and the fit, inline
    assert "search-002" in page and "[mixture.domains]" in page
    assert "The proposal, trained" in page and f"{PROPOSAL}</td>" in page and "asked shares: code" in page
    con = connect(searched)
    n, fitted = con.execute("SELECT count(*), count(fit_predicted) FROM ablations").fetchall()[0]
    assert (n, fitted) == (14, 14)  # 7 proxies (6 fitted + the proposal) x 2 held-out slices (code, web)


def test_search_proposes_only_what_the_repeat_caps_realise() -> None:
    """A fit that wants more web than web's sources can give under `max_repeats` proposes at most that share; the
    same fit without caps asks for nearly all web (BENCHMARKS: asked web 0.92, realised 0.33)."""
    from ablate.config import SearchConfig
    from ablate.search import fit_search, max_shares

    available = {"funcs": ("code", 9000), "docs": ("web", 500), "more_docs": ("web", 250)}
    caps = max_shares("domains", available, 7520, 4.0)
    assert caps == {"code": 1.0, "web": pytest.approx(3000 / 7520)}
    assert max_shares("sources", available, 7520, 4.0)["docs"] == pytest.approx(2000 / 7520)
    shares = {f"m{i}": {"domains": {"code": 1 - x, "web": x}} for i, x in enumerate((0.1, 0.2, 0.3))}
    # Bits per byte fall as web rises: unconstrained, the best predicted mixture is all web.
    rows = [
        {"candidate": c, "seed": 0, "eval_set": "heldout:web", "bpb": 4.0 - mix["domains"]["web"]}
        for c, mix in shares.items()
    ]
    search = SearchConfig(3, Path("run"), samples=2000, top=20)
    free = fit_search(search, [dict(r) for r in rows], shares, {}, available, {})["proposal"]
    capped = fit_search(search, [dict(r) for r in rows], shares, {}, available, caps)["proposal"]
    assert free["shares"]["web"] > 0.9 and free["realisable_samples"] == 2000, free
    assert caps["web"] - 0.05 < capped["shares"]["web"] <= caps["web"], capped
    assert 0 < capped["realisable_samples"] < 2000 and capped["max_shares"] == caps, capped
    assert capped["predicted"] > free["predicted"]


def test_mixtures_over_several_runs(searched: Path, tmp_path: Path) -> None:
    """`--candidates A,B --mixtures FILE` realises every mixture on every run (`<run>.<mixture>`), and every proxy
    is scored on each run's held-out slices: two copies of one run give the same samples and the same numbers."""
    import shutil

    run = searched.parent / "run"
    shutil.copytree(run / "corpus", tmp_path / "twin" / "corpus")
    mixtures = tmp_path / "mix.toml"
    mixtures.write_text("[mixtures.code_only.domains]\ncode = 1.0\n", encoding="utf-8")  # no run: the candidates'
    argv = ["--candidates", f"a={run},b={tmp_path / 'twin'}", "--mixtures", str(mixtures), "--tokens", "2048"]
    argv += ["--proxy", str(searched.parent / "proxy.toml"), "--eval", "heldout", "--eval-items", "5"]
    assert main([*argv, "--heldout-fraction", "0.1", "--out", str(tmp_path / "out")]) == 0
    bpb = _bpb(tmp_path / "out")
    sets = {f"heldout:{r}:{d}" for r in "ab" for d in ("code", "web")}
    assert {c for c, _s in bpb} == {"a.code_only", "b.code_only"} and {s for _c, s in bpb} == sets, bpb
    assert all(bpb["a.code_only", s] == bpb["b.code_only", s] for s in sets), bpb
    assert bpb["a.code_only", "heldout:a:code"] == bpb["a.code_only", "heldout:b:code"], bpb


RUN_ROW = {("code", "funcs"): ["def f():\n    return 1\n"], ("web", "docs"): ["Some prose."]}


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("[mixtures.a.domains]\ncode = 1.0\n", ["run"]),  # no run
        ('run = "run"\n[mixtures.a]\nseed = 3\n', ["[mixtures.a]", "seed"]),
        ('run = "run"\n[mixtures.b.domains]\nfiction = 1.0\n', ["[mixtures.b]", "fiction"]),
        ('run = "run"\n[mixtures.c.sources.nope]\nweight = 1.0\n', ["[mixtures.c]", "sources.nope"]),
        ('run = "run"\n[mixtures.d.domains]\nstem = 1.0\n', ["[mixtures.d]", "domains"]),  # not in the run
        ('run = "run"\n[mixtures.e.domains]\ncode = "much"\n', ["[mixtures.e]", "code"]),
        ('run = "run"\n[mixtures.f]\nmax_repeats = -1.0\n', ["[mixtures.f]", "max_repeats"]),
        ('run = "run"\nmixture = 1\n', ["mixture"]),
    ],
)
def test_bad_mixtures_file_is_one_line_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, names: list[str]
) -> None:
    write_run(tmp_path / "run", RUN_ROW)
    path = tmp_path / "mix.toml"
    path.write_text(body, encoding="utf-8")
    assert main(["--mixtures", str(path), "--tokens", "1000", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and all(n in err for n in names), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--run", "RUN"], "--search"),  # --run only names a search's run
        (["--run", "RUN", "--search", "1"], "at least 2"),
        (["--run", "RUN", "--search", "3", "--search-target", "heldout:stem"], "heldout:stem"),
        (["--run", "RUN", "--search", "3", "--search-target", "gsm8k", "--eval", "heldout"], "gsm8k"),
        (["--run", "RUN", "--candidates", "RUN", "--search", "3"], "--run RUN alone"),
        (["--candidates", "RUN", "--search", "3"], "without --candidates"),
    ],
)
def test_bad_search_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    run = write_run(tmp_path / "run", RUN_ROW)
    argv = [str(run) if a == "RUN" else a for a in argv]
    assert main([*argv, "--tokens", "1000", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and says in err, err


def test_a_mixture_named_as_the_proposal_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "run", RUN_ROW)
    path = tmp_path / "mix.toml"
    path.write_text(f'run = "run"\n[mixtures.{PROPOSAL}.domains]\ncode = 1.0\n', encoding="utf-8")
    argv = ["--mixtures", str(path), "--search", "2", "--tokens", "1000", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and PROPOSAL in err and "rename" in err, err


def test_proposal_is_converted_to_the_stage_tokenizer_shares(tmp_path: Path) -> None:
    """A domain's proxy share becomes a share of the stage's tokens through its sources' stage tokens per proxy
    token (the run's shards manifest); a source's weight is its share over its size, whatever the tokenizer."""
    from ablate.search import stage_table, stage_token_ratio

    available = {"funcs": ("code", 1000), "docs": ("web", 1000), "more_docs": ("web", 3000)}
    manifest = tmp_path / "run" / "shards" / "general" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    rows = [{"source": "funcs", "available_tokens": 250}, {"source": "docs", "available_tokens": 500}]
    manifest.write_text(json.dumps({"mixture": [*rows, {"source": "more_docs", "available_tokens": 1500}]}))
    ratio = stage_token_ratio(tmp_path / "run", available)
    assert ratio == {"funcs": 0.25, "docs": 0.5, "more_docs": 0.5}
    table = stage_table("domains", {"code": 0.5, "web": 0.5}, ratio, available)
    # code: 0.5 x 0.25 = 0.125 stage tokens, web: 0.5 x 0.5 = 0.25: a third and two thirds
    assert table == {"domains": {"web": 0.666667, "stem": 0.0, "code": 0.333333, "books": 0.0}}
    assert stage_table("domains", {"code": 0.5, "web": 0.5}, {}, available)["domains"]["code"] == 0.5
    by_source = stage_table("sources", {"funcs": 0.5, "docs": 0.1, "more_docs": 0.4}, {}, available)
    # per unit of size: funcs 0.5 / 1000, docs 0.1 / 1000, more_docs 0.4 / 3000; scaled to the largest
    assert by_source["sources"] == {
        "docs": {"weight": 0.2},
        "funcs": {"weight": 1.0},
        "more_docs": {"weight": 0.266667},
    }
    assert by_source["domains"]["web"] == 0.5
