"""`[scorers.<name>]` in a stage: every kept document carries its score in the `scores` column (DuckDB:
`scores['edu']`), the same bytes at 1 and 2 workers; filter mode drops below the threshold with the scorer and the
score in the lineage; a run without scores (or from before the column) reads as null; bad tables fail before work."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from core.io import read_rows
from core.stage_files import ConfigError
from flows.query import connect
from ingest.sources import load_sources
from pipeline.executors import LocalExecutor
from pipeline.layout import RunLayout
from pipeline.runner import run_step
from pipeline.step import iter_unit_docs
from schemas import Document
from stage.config import load_stage_config
from stage.run import run_stage
from tests.flows.corpus_fixture import outputs, write_split_corpus


def _stage_file(root: Path, base: Path, scorer_table: str) -> Path:
    path = root / f"stage-{abs(hash(scorer_table))}.toml"
    path.write_text(base.read_text() + "\n" + scorer_table)
    return path


def _run(cfg_path: Path, sources: Path, out: Path, workers: int = 1) -> RunLayout:
    layout = RunLayout(out)
    cfg = load_stage_config("general", cfg_path)
    executor = LocalExecutor(workers) if workers > 1 else None
    try:
        run_stage(cfg, load_sources(sources), layout, lambda step: run_step(step, layout, executor))
    finally:
        if executor is not None:
            executor.close()
    return layout


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("scored")
    sources, cfg = write_split_corpus(root, extra_files=2)  # several units: the 2-worker run splits them
    return root, sources, cfg


@pytest.fixture(scope="module")
def annotated(corpus, math_classifier) -> RunLayout:
    root, sources, cfg = corpus
    stage = _stage_file(root, cfg, f'[scorers.edu]\nmodel = "{math_classifier}"\nmode = "annotate"\n')
    return _run(stage, sources, root / "annotate-w1")


def test_annotate_mode_gives_every_kept_document_a_score_queryable_in_duckdb(annotated):
    con = connect(annotated.root)
    total, scored, lo, hi = con.execute(
        "SELECT count(*), count(scores['edu']), min(scores['edu']), max(scores['edu']) FROM docs"
    ).fetchone()
    assert total > 20 and scored == total and 0.0 <= lo <= hi <= 1.0
    assert con.execute("SELECT typeof(scores) FROM docs LIMIT 1").fetchone()[0] == "MAP(VARCHAR, DOUBLE)"
    # The fixture's worked word problems (stem) read as worked math; its prose about towns and soup does not.
    stem, web = (
        con.execute(f"SELECT avg(scores['edu']) FROM docs WHERE domain = '{d}'").fetchone()[0] for d in ("stem", "web")
    )
    assert stem > web
    high = con.execute("SELECT count(*) FROM docs WHERE scores['edu'] >= 0.5").fetchone()[0]
    assert 0 < high < total or high == total  # the filter expression runs; its count is the data's
    assert not con.execute("SELECT count(*) FROM lineage WHERE reason LIKE 'scorer_%'").fetchone()[0]


def test_scored_outputs_are_byte_identical_at_one_and_two_workers(corpus, math_classifier, annotated):
    root, sources, cfg = corpus
    stage = _stage_file(root, cfg, f'[scorers.edu]\nmodel = "{math_classifier}"\nmode = "annotate"\n')
    two = _run(stage, sources, root / "annotate-w2", workers=2)
    want, have = outputs(annotated.root), outputs(two.root)
    assert sorted(have) == sorted(want)
    assert [k for k in want if have[k] != want[k]] == []


def test_filter_mode_drops_below_the_threshold_with_the_scorer_and_score_in_lineage(
    corpus, math_classifier, annotated
):
    root, sources, cfg = corpus
    scored = {
        doc.id: doc.scores["edu"]
        for d in sorted(annotated.root.glob("steps/filter/units/*"))
        for doc in iter_unit_docs(d)
    }
    threshold = sorted(scored.values())[len(scored) // 2]  # the median: about half of them go
    expected = {i for i, s in scored.items() if s < threshold}
    assert expected and len(expected) < len(scored)
    stage = _stage_file(
        root, cfg, f'[scorers.edu]\nmodel = "{math_classifier}"\nmode = "filter"\nmin_score = {threshold!r}\n'
    )
    con = connect(_run(stage, sources, root / "filter-w1").root)
    rows = con.execute("SELECT doc_id, step, score FROM lineage WHERE reason = 'scorer_edu_below_min'").fetchall()
    assert {r[0] for r in rows} == expected
    assert all(step == "scorer_edu" and score == scored[doc_id] for doc_id, step, score in rows)
    assert con.execute("SELECT min(scores['edu']) FROM docs").fetchone()[0] >= threshold


def test_a_run_without_scorers_or_from_before_the_column_reads_scores_as_null(annotated, tmp_path):
    import shutil

    old = Path(shutil.copytree(annotated.root, tmp_path / "old"))
    for path in (old / "corpus" / "docs").rglob("*.parquet"):  # as a run written before the column existed
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["scores"]), path)
    con = connect(old)
    assert (
        con.execute("SELECT count(*) FROM docs WHERE scores IS NULL").fetchone()[0]
        == con.execute("SELECT count(*) FROM docs").fetchone()[0]
    )
    assert con.execute("SELECT count(*) FROM docs WHERE scores['edu'] >= 0.5").fetchone()[0] == 0
    assert Document.from_row(next(read_rows(old / "corpus" / "docs"))).scores is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('mode = "annotate"\n', "'model'"),
        ('model = "{cls}"\nmode = "drop"\n', "mode = 'drop': expected one of 'annotate', 'filter'"),
        ('model = "{cls}"\nmode = "filter"\n', "needs min_score"),
        ('model = "{cls}"\nmode = "filter"\nmin_score = 1.5\n', "in [0, 1]"),
        ('model = "{cls}"\nmode = "filter"\nkeep_top = 0.0\n', "keep_top = 0.0: the share of documents kept"),
        ('model = "{cls}"\nmode = "filter"\nmin_score = 0.5\nkeep_top = 0.1\n', "not both"),
        ('model = "{cls}"\nkeep_top = 0.1\n', 'only with mode = "filter"'),
        ('model = "{cls}"\nmode = "filter"\n[[scorers.edu.thresholds]]\nlang = "en"\n', "needs min_score or keep_top"),
        ('model = "{cls}"\nmin_score = 0.5\n', 'only with mode = "filter"'),
        (
            'model = "{cls}"\nmode = "filter"\n[[scorers.edu.thresholds]]\ndomain = "news"\nmin_score = 0.5\n',
            "domain = 'news': unknown",
        ),
        ('model = "/nonexistent/classifier"\n', "no card.json"),
    ],
)
def test_a_bad_scorer_table_is_one_line_before_any_work(corpus, math_classifier, table, message):
    root, _, cfg = corpus
    stage = _stage_file(root, cfg, "[scorers.edu]\n" + table.format(cls=math_classifier))
    with pytest.raises(ConfigError) as e:
        load_stage_config("general", stage)
    assert message in str(e.value) and "[scorers.edu]" in str(e.value) and "\n" not in str(e.value)


def test_thresholds_take_the_most_specific_entry(corpus, math_classifier):
    root, _, cfg = corpus
    stage = _stage_file(
        root,
        cfg,
        f'[scorers.edu]\nmodel = "{math_classifier}"\nmode = "filter"\nmin_score = 0.1\n'
        '[[scorers.edu.thresholds]]\ndomain = "web"\nmin_score = 0.2\n'
        '[[scorers.edu.thresholds]]\nlang = "fr"\nmin_score = 0.3\n'
        '[[scorers.edu.thresholds]]\ndomain = "web"\nlang = "en"\nmin_score = 0.4\n',
    )
    (scorer,) = load_stage_config("general", stage).scorers
    assert [
        scorer.threshold_for(d, lang)
        for d, lang in (("web", "en"), ("web", "fr"), ("web", "de"), ("stem", "fr"), ("stem", None))
    ] == [0.4, 0.3, 0.2, 0.3, 0.1]


def test_keep_top_cuts_each_entry_at_its_percentile_of_the_whole_run(corpus, math_classifier, annotated):
    from filters.score_cut import top_share_cutoff

    root, sources, cfg = corpus
    docs = [doc for d in sorted(annotated.root.glob("steps/filter/units/*")) for doc in iter_unit_docs(d)]
    groups = {"stem/*": [d for d in docs if d.domain == "stem"], "*/*": [d for d in docs if d.domain != "stem"]}
    cutoffs = {
        k: top_share_cutoff([d.scores["edu"] for d in g], share) for (k, g), share in zip(groups.items(), (0.5, 0.3))
    }
    expected = {
        d.id: (d.scores["edu"], cutoffs[k]) for k, g in groups.items() for d in g if d.scores["edu"] < cutoffs[k]
    }
    assert 0 < len(expected) < len(docs)
    stage = _stage_file(
        root,
        cfg,
        f'[scorers.edu]\nmodel = "{math_classifier}"\nmode = "filter"\nkeep_top = 0.3\n'
        '[[scorers.edu.thresholds]]\ndomain = "stem"\nkeep_top = 0.5\n',
    )
    # The cutoffs are read from every unit before any unit runs (and are in the step's fingerprint), so the cut is
    # the global one computed here from the annotated run, however the units are spread over workers.
    layout = _run(stage, sources, root / "top-w1")
    con = connect(layout.root)
    rows = con.execute(
        "SELECT doc_id, step, score, threshold FROM lineage WHERE reason = 'scorer_edu_below_top'"
    ).fetchall()
    assert {doc_id: (score, cut) for doc_id, _, score, cut in rows} == expected
    assert {step for _, step, _, _ in rows} == {"scorer_edu"}
    funnel = {r["step"]: r for r in json.loads(layout.funnel.read_text())["funnel"]}
    assert funnel["score_cut"]["dropped"] == {"scorer_edu_below_top": len(expected)}
    kept = con.execute("SELECT domain, min(scores['edu']) FROM docs GROUP BY domain").fetchall()
    assert all(low >= cutoffs["stem/*" if domain == "stem" else "*/*"] for domain, low in kept)


def test_top_share_cutoff_keeps_ceil_of_the_share_and_every_tie():
    from filters.score_cut import top_share_cutoff

    assert top_share_cutoff([0.1, 0.9, 0.5, 0.7], 0.5) == 0.7  # the top 2 of 4
    assert top_share_cutoff([0.1, 0.9, 0.5, 0.7], 0.1) == 0.9  # ceil(0.4) = 1: at least one document is kept
    assert top_share_cutoff([0.2, 0.5, 0.5, 0.5], 0.25) == 0.5  # the ties at the cutoff are all kept
    assert top_share_cutoff([0.3, 0.2], 1.0) == 0.2


def test_the_report_shows_each_scorers_histogram_per_domain_and_language(annotated):
    from report.data import collect
    from report.html import render

    data = collect(annotated.root)
    (edu,) = data["scores"]["scorers"]
    con = connect(annotated.root)
    per_domain = dict(con.execute("SELECT domain, count(*) FROM docs GROUP BY domain").fetchall())
    assert {d: sum(c) for d, c in edu["by_domain"].items()} == per_domain
    assert sum(sum(c) for c in edu["by_lang"].values()) == edu["docs"] == sum(per_domain.values())
    high = con.execute("SELECT count(*) FROM docs WHERE scores['edu'] >= 0.5").fetchone()[0]
    assert sum(c for counts in edu["by_domain"].values() for c in counts[10:]) == high  # bins of 0.05 from 0.5 up
    page = render(data)
    assert 'id="scores"' in page and 'data-plot="scores"' in page and "edu by language" in page
    # The same section as Prefect artifacts: a table artifact and the markdown report's "Scores" table.
    from pipeline.layout import RunLayout
    from report.artifacts import markdown, tables

    (rows,) = [rows for section, rows, _ in tables(data) if section == "scores"]
    assert {r["group"]: r["documents"] for r in rows if r["by"] == "domain"} == per_domain
    assert "## Scores" in markdown(data, RunLayout(annotated.root))
    # Which model scored, and what it learnt from (this one: reference text, so no annotation cost).
    (model,) = data["scores"]["models"]
    assert (model["name"], model["mode"], model["kind"], model["trained_on"]) == (
        "edu",
        "annotate",
        "fasttext",
        "reference text",
    )
    assert "learnt from" in page and "## Scorer models" in markdown(data, RunLayout(annotated.root))


def test_score_thirds_view_is_ccnet_buckets_per_language(annotated):
    """The `score_thirds` view cuts each language's scores into CCNet's thirds the way `ccnet_buckets` does."""
    from scoring.perplexity import ccnet_buckets

    con = connect(annotated.root)
    docs = con.execute(
        "SELECT id, lang, scores['edu'] FROM docs WHERE scores['edu'] IS NOT NULL ORDER BY id"
    ).fetchall()
    expected = dict(zip((d[0] for d in docs), ccnet_buckets([d[2] for d in docs], [d[1] for d in docs])))
    view = dict(con.execute("SELECT id, bucket FROM score_thirds WHERE scorer = 'edu'").fetchall())
    assert view == expected and len(view) == len(docs) > 3
    assert {"head", "middle", "tail"} <= set(view.values())


def test_the_report_gives_the_token_share_of_each_score_bucket():
    from report.scores import collect_scores

    class NoScores:  # a run without scorers: only the bucket rows of its shards matter here
        def execute(self, *_):
            return self

        def fetchall(self):
            return []

    budget = [
        {"source": "a", "bucket": "high", "selected_tokens": 300},
        {"source": "a", "bucket": "low", "selected_tokens": 100},
        {"source": "b", "selected_tokens": 600},
    ]
    buckets = collect_scores(NoScores(), {"shards": {"budget": budget}})["buckets"]
    assert buckets == [
        {"bucket": "high", "tokens": 300, "share": 0.3},
        {"bucket": "low", "tokens": 100, "share": 0.1},
        {"bucket": "unscored", "tokens": 600, "share": 0.6},
    ]
    assert collect_scores(NoScores(), {"shards": {"budget": budget[2:]}})["buckets"] == []


@pytest.fixture(scope="module")
def classes_run(corpus, topic_classifier) -> RunLayout:
    """A run with a `topic` classifier (three classes) in annotate mode, and the same classifier in filter mode on
    one class: P(science_tech) >= 0.5."""
    root, sources, cfg = corpus
    stage = _stage_file(
        root,
        cfg,
        f'[scorers.topic]\nmodel = "{topic_classifier}"\n'
        f'[scorers.science]\nmodel = "{topic_classifier}"\nmode = "filter"\nclass = "science_tech"\nmin_score = 0.5\n',
    )
    return _run(stage, sources, root / "classes-w1")


def test_a_multi_class_scorer_gives_one_score_per_class_and_filters_on_a_named_class(classes_run):
    """Every kept document has `scores['topic.<class>']`, probabilities that sum to 1; the filter on `class` drops
    P(science_tech) < 0.5 with the scorer and that probability in the lineage."""
    classes = ("crime_law", "literature", "science_tech")
    con = connect(classes_run.root)
    keys = [r[0] for r in con.execute("SELECT DISTINCT unnest(map_keys(scores)) AS k FROM docs ORDER BY k").fetchall()]
    assert keys == [f"{name}.{c}" for name in ("science", "topic") for c in classes]
    total = " + ".join(f"scores['topic.{c}']" for c in classes)
    kept, lo, hi, science = con.execute(
        f"SELECT count(*), min({total}), max({total}), min(scores['topic.science_tech']) FROM docs"
    ).fetchone()
    assert kept > 0 and abs(lo - 1) < 1e-3 and abs(hi - 1) < 1e-3 and science >= 0.5
    assert con.execute("SELECT count(*) FROM docs WHERE scores['topic.science_tech'] > 0.5").fetchone()[0] == kept
    dropped = con.execute("SELECT step, score FROM lineage WHERE reason = 'scorer_science_below_min'").fetchall()
    assert dropped and all(step == "scorer_science" and score < 0.5 for step, score in dropped)
    from report.scores import collect_scores

    section = collect_scores(con, {})
    assert [s["name"] for s in section["scorers"]] == keys and all(s["docs"] == kept for s in section["scorers"])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('mode = "filter"\nmin_score = 0.5\n', "needs class = one of ['crime_law', 'literature', 'science_tech']"),
        ('mode = "filter"\nclass = "sports"\nmin_score = 0.5\n', "class = 'sports': not one of"),
        ('class = "literature"\n', 'class drop documents only with mode = "filter"'),
    ],
)
def test_a_bad_multi_class_scorer_table_is_one_line(corpus, topic_classifier, table, message):
    root, _, cfg = corpus
    stage = _stage_file(root, cfg, f'[scorers.topic]\nmodel = "{topic_classifier}"\n{table}')
    with pytest.raises(ConfigError) as e:
        load_stage_config("general", stage)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_class_on_a_binary_classifier_is_one_line(corpus, math_classifier):
    root, _, cfg = corpus
    stage = _stage_file(
        root, cfg, f'[scorers.edu]\nmodel = "{math_classifier}"\nmode = "filter"\nclass = "x"\nmin_score = 0.5\n'
    )
    with pytest.raises(ConfigError, match="not multi-class"):
        load_stage_config("general", stage)


def test_score_buckets_read_a_class_of_a_multi_class_scorer(corpus, topic_classifier):
    """`[mixture.score_buckets]` names `<scorer>.<class>`: the class's probability is a score like any other."""
    root, _, cfg = corpus
    buckets = (
        '[mixture.score_buckets]\nscorer = "{key}"\n[mixture.score_buckets.buckets.high]\nmin_score = 0.5\nshare = 0.5\n'
        "[mixture.score_buckets.buckets.low]\nmin_score = 0.0\nshare = 0.5\n"
    )
    table = f'[scorers.topic]\nmodel = "{topic_classifier}"\n'
    stage = _stage_file(root, cfg, table + buckets.format(key="topic.science_tech"))
    assert load_stage_config("general", stage).scorers[0].score_keys[-1] == "topic.science_tech"
    with pytest.raises(ConfigError, match="scorer = 'topic': no"):
        load_stage_config("general", _stage_file(root, cfg, table + buckets.format(key="topic")))


def test_keep_top_of_a_class_cuts_on_that_classes_probability(corpus, topic_classifier, classes_run):
    from filters.score_cut import ScoreCutStep, read_cutoffs, top_share_cutoff

    root, _, cfg = corpus
    stage = _stage_file(
        root,
        cfg,
        f'[scorers.topic]\nmodel = "{topic_classifier}"\nmode = "filter"\nclass = "literature"\nkeep_top = 0.5\n',
    )
    (scorer,) = load_stage_config("general", stage).scorers
    units = sorted(classes_run.root.glob("steps/filter/units/*"))
    docs = [doc for u in units for doc in iter_unit_docs(u)]
    cutoff = top_share_cutoff([d.scores["topic.literature"] for d in docs], 0.5)
    assert read_cutoffs((scorer,), units) == {"topic": {"*/*": cutoff}}
    below = [d for d in docs if d.scores["topic.literature"] < cutoff]
    step = ScoreCutStep((scorer,), classes_run)
    decided = [step._first_below(d.domain, d.lang, d.scores, {"topic": {"*/*": cutoff}}) for d in docs]
    assert below and [b for b in decided if b] == [("topic", d.scores["topic.literature"], cutoff) for d in below]
