"""The chain runner and the config-driven chain builder."""

import pytest

from filters.base import ChainStats, Filter, Modifier, run_chain
from filters.chain import FILTERS, FilterConfigError, build_chain
from schemas import Document


class DropShort(Filter):
    name = "short"

    def filter(self, doc):
        return True if len(doc.text) > 5 else (False, "short_too_short", float(len(doc.text)))


class Upper(Modifier):
    name = "upper"
    domains = frozenset({"web"})

    def modify(self, doc):
        if doc.text.islower():
            doc.text = doc.text.upper()
            return [("upper_cased", None)]
        return []


class Broken(Filter):
    name = "broken"

    def filter(self, doc):
        if "boom" in doc.text:
            raise RuntimeError("cannot handle this")
        return True


def _docs():
    return [
        Document(id="a", text="tiny", source="s", domain="web"),
        Document(id="b", text="long enough text", source="s", domain="web"),
        Document(id="c", text="code stays lower", source="s", domain="code"),
        Document(id="d", text="this goes boom", source="s", domain="code"),
    ]


def test_run_chain_records_drops_changes_and_errors():
    lineage, stats = [], ChainStats()
    out = list(run_chain(_docs(), [DropShort(), Broken(), Upper()], lineage, stats))
    assert [d.id for d in out] == ["b", "c"]
    assert out[0].text == "LONG ENOUGH TEXT" and out[1].text == "code stays lower"
    rows = [(r.doc_id, r.step, r.action, r.reason, r.score) for r in lineage]
    assert rows == [
        ("a", "short", "dropped", "short_too_short", 4.0),
        ("b", "upper", "modified", "upper_cased", None),
        ("d", "broken", "dropped", "broken_error", None),
    ]
    assert (stats.docs_in, stats.docs_out) == (4, 2)
    assert stats.dropped == {"short_too_short": 1, "broken_error": 1}


def test_build_chain_order_and_config_errors():
    chain = build_chain({"langid": {"min_score": 0.5}, "toxicity": {"enabled": False}})
    names = [s.name for s in chain]
    assert "toxicity" not in names
    assert names == [n for n in FILTERS if n != "toxicity"]
    assert chain[names.index("langid")].min_score == 0.5
    with pytest.raises(FilterConfigError, match="unknown filter"):
        build_chain({"sparkle": {}})
    with pytest.raises(FilterConfigError, match=r"\[filters.langid\]: unknown key\(s\) \['min_scor'\]"):
        build_chain({"langid": {"min_scor": 0.5}})


def test_domains_key_limits_any_filter():
    chain = build_chain({"gopher_quality": {"domains": ["web"]}, "word_blocklist": {"domains": ["web", "stem"]}})
    by_name = {s.name: s for s in chain}
    assert by_name["gopher_quality"].domains == frozenset({"web"})
    assert by_name["word_blocklist"].domains == frozenset({"web", "stem"})
    with pytest.raises(FilterConfigError, match="'domains'"):
        build_chain({"c4": {"domains": ["poetry"]}})


def test_a_filter_that_edits_text_is_recorded_as_modified():
    from filters.c4 import C4Quality

    lines = [
        "This line is a perfectly normal sentence with enough words in it.",
        "Click here to accept cookies",
        "Another sentence follows here, and it also ends properly.",
        "A third sentence keeps the document long enough to pass.",
        "The fourth sentence adds a little more ordinary content here.",
        "The fifth sentence makes sure that there are enough of them.",
    ]
    text = "\n".join(lines)
    doc = Document(id="c4", text=text, source="s", domain="web", lang="en")
    lineage = []
    out = list(run_chain([doc], [C4Quality()], lineage))
    assert out and "cookies" not in out[0].text
    assert [(r.step, r.action, r.reason) for r in lineage] == [("c4", "modified", "c4_text_changed")]
    assert lineage[0].score == len(text) - len(out[0].text) > 0


def test_a_filter_that_empties_the_text_drops_the_document():
    class EraseAll(Filter):
        name = "eraser"

        def filter(self, doc):
            doc.text = "   "
            return True

    lineage = []
    out = list(run_chain([Document(id="e", text="some words", source="s", domain="web")], [EraseAll()], lineage))
    assert out == []
    assert [(r.action, r.reason) for r in lineage] == [
        ("modified", "eraser_text_changed"),
        ("dropped", "eraser_emptied_text"),
    ]


class FailsOnBoom(Filter):
    """A batch filter: judges the whole batch at once and raises if any document says "boom"."""

    name = "batchy"

    def filter(self, doc):
        return self.filter_batch([doc])[0]

    def filter_batch(self, docs, features=None):
        if any("boom" in d.text for d in docs):
            raise RuntimeError("bad batch")
        return [True if len(d.text) > 10 else (False, "batchy_short", 1.0) for d in docs]


def test_batches_give_the_same_decisions_rows_and_stats_as_one_document_at_a_time():
    def run(batch_size):
        docs = [
            Document(id=str(i), text=t, source="s", domain="web")
            for i, t in enumerate(
                ["tiny", "long enough text", "this goes boom now", "short", "another long text here", "x"] * 5
            )
        ]
        lineage, stats = [], ChainStats()
        out = list(run_chain(docs, [DropShort(), FailsOnBoom(), Upper()], lineage, stats, batch_size=batch_size))
        rows = [(r.doc_id, r.step, r.action, r.reason, r.score) for r in lineage]
        return [(d.id, d.text) for d in out], rows, (stats.docs_in, stats.docs_out, stats.dropped, stats.modified)

    one = run(1)
    assert one[1][:4] == [
        ("0", "short", "dropped", "short_too_short", 4.0),
        ("1", "upper", "modified", "upper_cased", None),
        ("2", "batchy", "dropped", "batchy_error", None),  # only the failing document, not its batch
        ("3", "short", "dropped", "short_too_short", 5.0),
    ]
    assert one[2][:2] == (30, 10)
    for size in (2, 7, 256):
        assert run(size) == one, size


def test_chain_counts_documents_that_took_the_fallback_word_rules(tmp_path, caplog):
    """Malayalam and Hindi have no segmenter here: their documents are counted per language in the chain's stats
    (the filter step copies them into its own) and no warning is logged; English, Chinese and Korean have one."""
    import logging

    from filters.gopher_repetition import GopherRepetition

    texts = {
        "ml": "ഇത് ഒരു വാക്യം ആണ്.",
        "hi": "यह एक वाक्य है।",
        "ko": "이것은 문장입니다.",
        "en": "This is a sentence.",
        "zh": "这是一个句子。",
    }
    docs = [Document(id=lang, text=t, source="s", domain="web", lang=lang) for lang, t in texts.items()]
    docs += [Document(id="hi2", text="यह दूसरा वाक्य है।", source="s", domain="web", lang="hi")]
    docs += [Document(id="hi-short", text="छोटा", source="s", domain="web", lang="hi")]  # dropped before: not counted
    stats = ChainStats()
    with caplog.at_level(logging.WARNING):
        list(run_chain(docs, [DropShort(), GopherRepetition()], [], stats))
    assert stats.segmentation_fallback == {"ml": 1, "hi": 2}
    assert not [r for r in caplog.records if r.name.startswith("filters.")]


def test_the_filters_modules_import_no_cycle():
    """Issue 19: base -> text_features -> base and language_thresholds -> text_features -> language_thresholds were
    cycles (hidden in function-level imports, which count here too): the text features import no filter now."""
    import ast
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "filters"
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("filters."):
                deps.add(node.module.removeprefix("filters."))
        graph[path.stem] = deps - {path.stem}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(d == goal or (d not in seen and reaches(d, goal, seen | {d})) for d in graph.get(start, ()))

    assert {"base", "text_features", "language_thresholds", "prose_filter", "lang_codes"} <= set(graph)
    assert [m for m in sorted(graph) if reaches(m, m, {m})] == []
