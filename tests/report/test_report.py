"""The run report: sections read from a real stage run, the self-contained HTML page, the Prefect artifacts, and
no secret or email from the input anywhere in them or in the run's logs."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect import flow

from flows.stage import stage_flow
from pipeline.layout import RunLayout
from report.artifacts import artifact_key, publish_artifacts
from report.html import build_report
from tests.report.leaky_corpus import EMAIL, SECRET, write_leaky_corpus, write_stage_config

pytestmark = pytest.mark.slow


@flow(name="corpusforge-test-stage-report")
def stage_with_report(sources: str, out: str, config: str) -> dict:
    summary = stage_flow(stage="general", sources=sources, out=out, config=config)
    layout = RunLayout(Path(out))
    # The stage flow writes the page and publishes the artifacts itself once it calls report.* at its end;
    # doing it here too keeps this test about the report, whatever the stage does.
    if not (layout.report / "index.html").is_file():
        build_report(layout.root)
    publish_artifacts(summary, layout)
    return summary


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def leaky_run(tmp_path_factory, prefect_api):
    """A stage run (as a Prefect flow, on the session's Prefect server) over a corpus that plants EMAIL and SECRET; with every
    log line, artifact and log record the server holds."""
    root = tmp_path_factory.mktemp("leaky")
    sources = write_leaky_corpus(root)
    cfg = write_stage_config(root, sources)
    out = root / "run"
    console = _Collect()
    loggers = [logging.getLogger(), logging.getLogger("prefect")]
    for lg in loggers:
        lg.addHandler(console)
    try:
        started = datetime.now(UTC)
        summary = stage_with_report(str(sources), str(out), str(cfg))
        from prefect.client.orchestration import get_client
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=30)
        with get_client(sync_client=True) as client:
            logs = _all(client.read_logs)  # every log the session's server holds: the leak check reads them all
            # This run's artifacts (the server is shared by the session; tests run one after another).
            artifacts = [a for a in _all(client.read_artifacts) if a.created >= started]
    finally:
        for lg in loggers:
            lg.removeHandler(console)
    return {
        "root": root,
        "out": out,
        "summary": summary,
        "console": console.lines,
        "logs": logs,
        "artifacts": artifacts,
    }


def _all(read) -> list:
    items, offset = [], 0
    while True:
        page = read(limit=200, offset=offset)
        items += page
        if len(page) < 200:
            return items
        offset += 200


def test_planted_secret_and_email_appear_nowhere(leaky_run):
    out: Path = leaky_run["out"]
    page = (out / "report" / "index.html").read_text(encoding="utf-8")
    # The leaky source reached the report: its dropped document and its quarantined record are the examples of
    # their reasons, with the redactors' placeholders where the email and the token were.
    assert "gopher_quality_too_many_bullets" in page and "leaky/notes.jsonl:3" in page
    assert page.count("&lt;EMAIL&gt;") >= 2 and page.count("&lt;SECRET&gt;") >= 2
    texts = {
        "report/" + p.name: p.read_text(encoding="utf-8", errors="replace")
        for p in (out / "report").rglob("*")
        if p.is_file()
    }
    texts["funnel.json"] = (out / "funnel.json").read_text()
    assert leaky_run["artifacts"], "the run published no artifact"
    for a in leaky_run["artifacts"]:
        texts[f"artifact {a.key}"] = json.dumps(a.data, default=str) + (a.description or "")
    report_md = [a for a in leaky_run["artifacts"] if a.key == artifact_key("general", "report")]
    assert report_md and "&lt;SECRET&gt;" in report_md[0].data
    assert len(leaky_run["logs"]) > 20, "the flow's logs did not reach the API"
    texts["api logs"] = "\n".join(log.message for log in leaky_run["logs"])
    texts["console logs"] = "\n".join(leaky_run["console"])
    for where, text in texts.items():
        assert EMAIL not in text, f"the planted email leaked into {where}"
        assert SECRET not in text and SECRET[4:20] not in text, f"the planted token leaked into {where}"


def test_sections_match_the_run(leaky_run):
    from report.data import collect

    data = collect(leaky_run["out"])
    summary = leaky_run["summary"]
    assert [r["step"] for r in data["funnel"]] == [r["step"] for r in summary["funnel"]]
    assert data["overview"]["records_read"] == summary["records_read"] and data["overview"]["count_invariant_holds"]
    reasons = {r["reason"]: r for r in data["drop_reasons"]}
    assert reasons["gopher_quality_too_many_bullets"]["source"] == "leaky"
    assert {(q["source"], q["reason"]) for q in data["quarantine"]} >= {
        ("leaky", "missing_text_field"),
        ("settings-repo", "binary_file"),
    }
    assert data["duplicates"]["methods"]["exact"]["clusters"] == 1
    assert data["duplicates"]["methods"]["exact"]["size_counts"] == {2: 1}
    quality = {q["reason"]: q for q in data["quality"]}
    assert quality["gopher_quality_too_many_bullets"]["threshold"] == 0.9  # GopherQuality's default
    assert quality["langid_low_score"]["threshold"] == 0.65  # the stage file's value
    from flows.query import connect

    scored = connect(leaky_run["out"]).sql("SELECT count(*) FROM docs WHERE lang_score IS NOT NULL").fetchall()[0][0]
    assert 0 < len(quality["langid_low_score"]["kept_scores"]) == scored
    assert sum(r["docs"] for r in data["languages"]) == summary["docs_final"]
    packed = sum(p["tokens"] for p in data["tokens"]["packed"])
    assert packed > 0 and {p["source"] for p in data["tokens"]["packed"]} <= {
        b["source"] for b in data["tokens"]["budget"]
    }
    assert data["synth"] == [] and data["train"]["points"] == []


def test_artifacts_published_per_section(leaky_run):
    keys = {a.key for a in leaky_run["artifacts"]}
    for section in ("report", "funnel", "drop-reasons", "quarantine", "languages", "duplicates", "tokens"):
        assert artifact_key("general", section) in keys
    funnel = next(a for a in leaky_run["artifacts"] if a.key == artifact_key("general", "funnel"))
    rows = json.loads(funnel.data) if isinstance(funnel.data, str) else funnel.data
    assert [r["step"] for r in rows] == [r["step"] for r in leaky_run["summary"]["funnel"]]


def test_page_is_self_contained_and_deterministic(leaky_run, tmp_path):
    out = leaky_run["out"]
    first = build_report(out).read_bytes()
    assert build_report(out).read_bytes() == first
    page = first.decode()
    assert "default-src 'none'" in page
    for fetches in ("<script", "<link", "src=", "@import", "<iframe", "<img", "<object", "<embed"):
        assert fetches not in page, fetches
    assert not re.search(r"url\((?!#)", page), "a CSS url() that is not a reference inside the page"
    assert not re.search(r"(?:href|xlink:href)=\"(?!#)", page), "a link out of the page"
    assert page.count('<figure class="plot"') >= 6
    # The trainer's curves appear when the run has a trainer log (on a copy: the module's run stays as it is).
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    (copy / "train").mkdir()
    (copy / "train" / "log.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "stage": "general",
                    "step": s,
                    "loss": 6.0 - s / 10,
                    "lr": 1e-3 * s / 5,
                    "load_min": 0.1,
                    "load_max": 0.3,
                }
            )
            + "\n"
            for s in range(1, 6)
        )
        + '{"cut by a kill'
    )
    train_page = build_report(copy).read_text()
    assert 'data-plot="train"' in train_page and "expert load" in train_page and "5 logged steps" in train_page


def test_flows_report_cli(leaky_run, tmp_path, capsys):
    from flows.report import main

    assert main([str(leaky_run["out"])]) == 0
    assert capsys.readouterr().out.strip() == str(RunLayout(leaky_run["out"]).report / "index.html")
    assert main([str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no funnel.json") and err.count("\n") == 1


def test_publish_artifacts_is_a_no_op_outside_a_flow_run(leaky_run, monkeypatch):
    import prefect.artifacts

    def refuse(*a, **k):
        raise AssertionError("an artifact was created outside a flow run")

    monkeypatch.setattr(prefect.artifacts, "create_markdown_artifact", refuse)
    monkeypatch.setattr(prefect.artifacts, "create_table_artifact", refuse)
    assert publish_artifacts(leaky_run["summary"], RunLayout(leaky_run["out"])) is None


# --- units without a run --------------------------------------------------------------------------------------


def test_excerpt_redacts_before_it_cuts():
    from report.redact import excerpt

    text = "x " * 70 + f"mail {EMAIL} token {SECRET} " + "y " * 100
    short = excerpt(text, chars=160)
    assert len(short) <= 160 and "ghp_" not in short and "jane" not in short
    assert "<EMAIL>" in short
    assert excerpt(None) == "" and excerpt("a\n\n b") == "a b"


def test_thresholds_come_from_the_config_else_the_filter_default():
    from report.thresholds import threshold as _threshold

    assert _threshold("gopher_repetition_top_2_gram", {}) == 0.2
    assert _threshold("gopher_repetition_duplicated_7_n_grams", {}) == 0.13
    assert _threshold("gopher_repetition_top_3_gram", {"gopher_repetition": {"top_n_grams": [[3, 0.5]]}}) == 0.5
    assert _threshold("gopher_quality_short_doc", {"gopher_quality": {"min_doc_words": 20}}) == 20.0
    assert _threshold("langid_low_score", {"langid": {"min_score": None}}) is None
    assert _threshold("toxicity_offensive", {}) is None


def test_a_documents_threshold_is_its_languages():
    """Issue 19: a Thai document dropped by a prose rule was judged against FineWeb-2's Thai row, not English's."""
    from filters.language_thresholds import thresholds_for
    from report.thresholds import LanguageThresholds

    run = LanguageThresholds({})
    alpha = "gopher_quality_below_alpha_threshold"
    assert run.of(alpha, "en") == run.of(alpha, None) == 0.8  # English: datatrove's default
    assert run.of(alpha, "th") == thresholds_for("th").max_non_alpha_words_ratio == 0.9
    assert run.of("gopher_quality_above_avg_threshold", "ml") == 37
    assert run.of("gopher_repetition_top_2_gram", "ko") == thresholds_for("ko").top_n_grams[0][1] != 0.2
    assert run.of("fineweb_line_punct_ratio", "th") == 0 and run.of("fineweb_line_punct_ratio", "en") == 0.12
    assert (
        run.of("gopher_quality_single_char_words", "my") == 0.3
        and run.of("gopher_quality_single_char_words", "en") is None
    )
    assert run.of("gopher_quality_short_doc", "th") == 50  # not per language
    # the stage's tables count: per-language thresholds off, a language ID score for one language
    off = LanguageThresholds(
        {"gopher_quality": {"per_language_thresholds": False}, "langid": {"min_scores": {"bs": 0.4}}}
    )
    assert off.of(alpha, "th") == 0.8 and off.of("langid_low_score", "bs") == 0.4


def test_plots_draw_what_they_are_given():
    from report import plots

    svg = plots.synth(
        [
            {"template": "qa_pairs", "fate": "kept", "docs": 4},
            {"template": "qa_pairs", "fate": "langid_low_score", "docs": 1},
        ]
    )
    assert svg.startswith("<svg") and "qa_pairs" in svg and "langid_low_score" in svg
    q = plots.quality(
        [
            {
                "reason": "langid_low_score",
                "dropped": 2,
                "dropped_scores": [0.2, 0.4],
                "kept_scores": [0.9, 0.95],
                "threshold": 0.65,
            }
        ]
    )
    assert "threshold 0.65" in q
    assert plots.quality([]) is None and plots.trainer({"points": []}) is None and plots.funnel([]) is None
    assert plots.duplicate_clusters({"methods": {"exact": {"size_counts": {}}}}) is None


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_and_quiet_in_ci(monkeypatch, tmp_path):
    from pipeline.step import StepStats, UnitResult
    from report.progress import StepProgress

    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "part.parquet").write_bytes(b"\0" * 2_000_000)
    stats = StepStats(docs_in=500, docs_out=400, dropped=Counter(gopher_short_doc=100))
    result = UnitResult("u", tmp_path / "u", "h", stats, skipped=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("CORPUSFORGE_NO_PROGRESS", raising=False)
    tty = _Tty()
    with StepProgress("filter", 2, stream=tty) as p:
        for _ in range(2):
            time.sleep(0.15)  # past tqdm's 0.1 s between redraws
            p.advance(result)
    shown = tty.getvalue()
    assert "filter" in shown and "docs/s" in shown and "MB/s" in shown and "2/2" in shown and "200 dropped" in shown
    assert shown.endswith("\r") and shown.rsplit("\r", 2)[-2].strip() == ""  # cleared: the step's line follows
    assert p.docs == 1000 and p.bytes == 4_000_000 and p.dropped == 200
    monkeypatch.setenv("CI", "true")
    quiet = _Tty()
    with StepProgress("filter", 2, stream=quiet) as p:
        p.advance(result)
    assert quiet.getvalue() == ""
    plain = io.StringIO()  # a log file or a pipe: no bar either
    monkeypatch.delenv("CI")
    with StepProgress("filter", 2, stream=plain) as p:
        p.advance(result)
    assert plain.getvalue() == ""


def test_a_finished_step_is_one_line_with_its_counts_rate_and_time(tmp_path):
    from pipeline.runner import StepResult
    from pipeline.step import StepStats, UnitResult
    from report.progress import step_line

    unit = UnitResult("u", tmp_path, "h", StepStats(docs_in=10, docs_out=7), skipped=False)
    stats = StepStats(docs_in=1_500, docs_out=1_200, dropped=Counter(a=250), quarantined=Counter(b=50))
    ran = StepResult("filter", "fp", [unit] * 3, stats, units_run=2, timing={"wall_s": 3.0})
    line = step_line(ran)
    assert "\n" not in line
    assert re.search(r"^filter +3 units \(2 run\) +1,500 in +1,200 out +300 dropped +500 docs/s +3\.0 s$", line), line
    cached = StepResult("filter", "fp", [unit], stats, units_run=0, timing={"wall_s": 0.01})
    assert re.search(r"^filter +1 unit +1,500 in .* 300 dropped +cached$", step_line(cached)), step_line(cached)
