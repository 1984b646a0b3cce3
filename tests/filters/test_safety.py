"""Safety filters: literal URLs and texts with expected reasons, and recall / false drops on the Davidson tweets.

WARNING: the shared corpus and some literals below contain offensive words (needed to test a bad-word filter).
"""

from __future__ import annotations

import csv
import html
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.assets import ASSETS, Asset, AssetError, asset_path
from core.paths import REPO_ROOT
from filters.base import run_chain
from filters.toxicity import Toxicity, toxicity_scores
from filters.url_blocklist import UrlBlocklist, _load_cached, _packaged_url_lists
from filters.word_blocklist import BADWORD_LANGUAGES, WordBlocklist, normalize_lang
from schemas import Document


def doc(text: str = "some text", url: str | None = None, lang: str | None = "en", domain: str = "web") -> Document:
    return Document(id="d", text=text, source="s", domain=domain, lang=lang, url=url)


# --- URL blocklist ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def url_extra_only() -> UrlBlocklist:
    return UrlBlocklist(
        extra_domains=["bad.example", "www.evil.test"],
        extra_urls=["https://ok.example/path/to/bad-page"],
        extra_banned_words=["zorgle"],
        extra_banned_subwords=["blorpx"],
        use_packaged_lists=False,
    )


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://bad.example/page", "url_blocklist_domain"),
        ("http://a.b.bad.example:8080/x?y=1", "url_blocklist_domain"),  # parent domain, port
        ("https://user:pw@BAD.EXAMPLE./", "url_blocklist_domain"),  # userinfo, case, trailing dot
        ("bad.example/no-scheme", "url_blocklist_domain"),
        ("https://evil.test/", "url_blocklist_domain"),  # "www." stripped from the extra domain
        ("http://www.ok.example/path/to/bad-page/", "url_blocklist_url"),
        ("https://ok.example/a-zorgle-b", "url_blocklist_banned_word"),
        ("https://ok.example/aBLORPXb", "url_blocklist_banned_subword"),
        ("https://notbad.example/page", True),  # "notbad.example" is not a subdomain of "bad.example"
        ("https://ok.example/zorgles", True),  # banned words match whole URL words only
        ("https://ok.example/path/to/bad-page/more", True),
    ],
)
def test_url_blocklist_extra_lists(url_extra_only: UrlBlocklist, url: str, expected: object) -> None:
    result = url_extra_only.filter(doc(url=url))
    assert (result if result is True else result[1]) == expected


def test_url_blocklist_keeps_docs_without_url(url_extra_only: UrlBlocklist) -> None:
    assert url_extra_only.filter(doc(url=None)) is True
    assert url_extra_only.filter(doc(url="")) is True
    assert url_extra_only.filter(doc(url="not a url at all")) is True


def test_url_blocklist_packaged_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built from the pip package (6 s: 4.56M domains hashed) into an empty cache, then read back from the cache
    (memory-mapped) with the same hashes and decisions."""
    monkeypatch.setenv("CORPUSFORGE_CACHE", str(tmp_path))
    cases = {
        "https://www.pornhub.com/view": "url_blocklist_domain",
        "http://cdn.sub.xvideos.com/a.mp4": "url_blocklist_domain",
        "https://example.com/free-porn-videos": "url_blocklist_banned_word",
        "https://example.com/anal-sex-hardcore": "url_blocklist_soft_banned_words",
        "https://en.wikipedia.org/wiki/Sex_education": True,
        "https://www.bbc.co.uk/news/science": True,
        "https://github.com/huggingface/datatrove": True,
    }
    loaded = []
    try:
        for _ in ("built", "cached"):
            _packaged_url_lists.cache_clear()
            f = UrlBlocklist()
            got = {u: (r if (r := f.filter(doc(url=u))) is True else r[1]) for u in cases}
            assert got == cases
            loaded.append((f._domain_hashes, f._blocked_urls))
    finally:
        _packaged_url_lists.cache_clear()  # later tests load the lists from the default cache, not tmp_path
    (built, built_urls), (cached, cached_urls) = loaded
    assert len(built) > 4_000_000 and len(built_urls) > 10_000
    assert isinstance(cached, np.memmap) and np.array_equal(cached, built) and cached_urls == built_urls
    assert sorted(p.suffix for p in (tmp_path / "url_blocklist").iterdir()) == [".npy", ".txt"]  # no temporary left


def test_url_blocklist_cache_damaged_file_is_rebuilt(tmp_path: Path) -> None:
    domains, urls = tmp_path / "d.npy", tmp_path / "u.txt"
    buffer = io.BytesIO()
    np.save(buffer, np.arange(1000, dtype=np.uint64))
    domains.write_bytes(buffer.getvalue()[:-8])  # a killed writer would never leave this (rename), a disk might
    urls.write_text("example.com/a\nexample.org/b")
    assert _load_cached(domains, urls) is None
    domains.write_bytes(buffer.getvalue())
    hashes, blocked = _load_cached(domains, urls)
    assert list(hashes[:3]) == [0, 1, 2] and blocked == {"example.com/a", "example.org/b"}
    np.save(domains, np.arange(10, dtype=np.int32))  # not uint64 hashes
    assert _load_cached(domains, urls) is None


# --- word blocklist -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def words() -> WordBlocklist:
    return WordBlocklist()


@pytest.mark.parametrize(
    "text, lang, expected",
    [
        ("What a fucking mess this is.", "en", "word_blocklist_en"),
        ("SHIT happens", "en", "word_blocklist_en"),  # case-insensitive
        ("Scunthorpe is a town; the class made an assumption about Essex.", "en", True),  # word boundaries
        ("A cockpit, a shitake... no, a shiitake mushroom.", "en", True),
        ("Du bist ein Arschloch!", "de", "word_blocklist_de"),
        ("Das Wetter ist heute schön.", "de", True),
        ("Quel connard, vraiment.", "fr", "word_blocklist_fr"),
        ("这是一个色情网站", "zh", "word_blocklist_zh"),  # substring match, no spaces
        ("这是一个性能测试", "zh", True),  # C4 allowlist: "性" alone is not a bad word
        ("今日はいい天気ですね", "ja", True),
        ("fucking", "xx", True),  # no list for this language: kept
        ("fucking", None, True),  # no language: kept
        ("fucking", "en-US", "word_blocklist_en"),  # region stripped
    ],
)
def test_word_blocklist_literals(words: WordBlocklist, text: str, lang: str | None, expected: object) -> None:
    result = words.filter(doc(text, lang=lang))
    assert (result if result is True else result[1]) == expected


def test_word_blocklist_coverage_and_domains(words: WordBlocklist) -> None:
    assert len(BADWORD_LANGUAGES) == 24 and {"en", "de", "zh", "ja", "th", "ru", "ar", "hi"} <= set(BADWORD_LANGUAGES)
    assert words.languages == sorted(BADWORD_LANGUAGES)
    assert words.applies_to(doc(domain="web")) and not words.applies_to(doc(domain="code"))
    assert normalize_lang("zh-Hans") == "zh" and normalize_lang("nb") == "no" and normalize_lang(None) is None


def test_word_blocklist_user_lists_and_ratio(tmp_path: Path) -> None:
    (tmp_path / "xx.txt").write_text("# comment\nblarg\nfoo bar\n\n", encoding="utf-8")
    (tmp_path / "en.json").write_text('{"words": ["Wibble"]}', encoding="utf-8")
    f = WordBlocklist(lists={"xx": tmp_path / "xx.txt", "en": tmp_path / "en.json"}, default_lang="xx")
    assert f.filter(doc("this is blarg.", lang="xx"))[1] == "word_blocklist_xx"
    assert f.filter(doc("one foo bar two", lang=None))[1] == "word_blocklist_xx"  # default_lang, phrase
    assert f.filter(doc("blarging foobar", lang="xx")) is True
    assert f.filter(doc("wibble!", lang="en"))[1] == "word_blocklist_en"  # user list extends the packaged one
    assert f.filter(doc("fuck", lang="en"))[1] == "word_blocklist_en"
    only_user = WordBlocklist(lists={"en": tmp_path / "en.json"}, use_packaged_lists=False)
    assert only_user.filter(doc("fuck", lang="en")) is True
    ratio = WordBlocklist(max_badword_ratio=0.1)
    assert ratio.filter(doc("shit " + "fine words here " * 10, lang="en")) is True  # 1 / 31 words
    keep, reason, score = ratio.filter(doc("shit shit fine", lang="en"))
    assert (keep, reason) == (False, "word_blocklist_en") and score == pytest.approx(2 / 3)
    with pytest.raises(FileNotFoundError, match="one term per line"):
        WordBlocklist(lists={"en": tmp_path / "missing.txt"})


# --- toxicity -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tox() -> Toxicity:
    return Toxicity()


def test_toxicity_literals(tox: Toxicity) -> None:
    keep, reason, score = tox.filter(doc("you are a fucking idiot, shut up"))
    assert (keep, reason) == (False, "toxicity_score") and score > 0.9
    assert tox.filter(doc("The committee approved the budget for the new library.")) is True
    assert tox.filter(doc("you are a fucking idiot, shut up", lang="de")) is True  # English-only by default
    # web only by default: the chain skips code documents, and `domains` widens it
    assert tox.applies_to(doc(domain="web")) and not tox.applies_to(doc(domain="code"))
    assert Toxicity(domains=["web", "code"]).applies_to(doc(domain="code"))
    lineage: list = []
    code_doc = doc("you are a fucking idiot", domain="code")
    assert list(run_chain([code_doc], [tox], lineage)) == [code_doc] and lineage == []
    assert Toxicity(max_score=None).filter(doc("you are a fucking idiot")) is True
    assert tox.score("") == 0.0


def _sklearn_toxicity(texts: list[str]) -> np.ndarray:
    """alt-profanity-check's own pipeline: its pickles as scikit-learn objects, `predict_proba`."""
    import joblib

    vectorizer = joblib.load(asset_path("profanity_check.vectorizer"))
    model = joblib.load(asset_path("profanity_check.model"))
    return model.predict_proba(vectorizer.transform(texts))[:, 1]


TOXICITY_LITERALS = [
    "you are a fucking idiot",
    "The committee approved the budget.",
    "",
    "lol ok",
    "Stop words alone: the and of to it is",
    "The weather report for the coastal region follows.\n" * 50 + "you are a FUCKING idiot, shut up",
]


def test_toxicity_numpy_matches_sklearn() -> None:
    assert toxicity_scores(TOXICITY_LITERALS) == pytest.approx(list(_sklearn_toxicity(TOXICITY_LITERALS)), abs=1e-12)


def test_toxicity_numpy_matches_sklearn_on_davidson(corpora: Path) -> None:
    texts = [d.text for d in _davidson(corpora / "safety_offensive_text")[0]]
    ours, expected = np.array(toxicity_scores(texts)), _sklearn_toxicity(texts)
    assert np.abs(ours - expected).max() <= 1e-9  # measured 3e-16 on the 1,500 tweets
    assert ((ours > 0.8) == (expected > 0.8)).all()


def test_toxicity_scores_without_importing_sklearn() -> None:
    code = (
        "import sys; from filters.toxicity import toxicity_scores; assert toxicity_scores(['you idiot'])[0] > 0.5; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.strip() == "[]", out.stdout  # ~85 MiB and ~1 s saved in every worker that scores


def test_toxicity_chunks_find_a_toxic_paragraph() -> None:
    text = "The weather report for the coastal region follows.\n" * 200 + "you are a fucking idiot, shut up\n"
    assert Toxicity().score(text) < 0.5  # TF-IDF over the whole page dilutes one line
    assert Toxicity(chunk_chars=500).score(text) > 0.9


def test_toxicity_model_is_a_sha_checked_asset() -> None:
    assert asset_path("profanity_check.model").name == "model.joblib"
    ASSETS["test.missing"] = Asset("test.missing", "profanity_check", "data/nope.joblib", "0" * 64, "pip install x==1")
    try:
        with pytest.raises(AssetError, match="pip install x==1"):
            asset_path("test.missing")
    finally:
        del ASSETS["test.missing"]


# --- Davidson et al. (ICWSM 2017) tweets: recall and false drops ---------------------------------------------
def _davidson(safety: Path) -> tuple[list[Document], list[str]]:
    path = safety / "davidson_labeled_sample.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))  # tweets contain newlines: parse as CSV
    docs = [
        Document(id=r["id"], text=html.unescape(r["tweet"]), source="davidson", domain="web", lang="en") for r in rows
    ]
    return docs, [r["label_name"] for r in rows]


def _rates(dropped: list[bool], labels: list[str]) -> tuple[float, float]:
    pos = [d for d, lab in zip(dropped, labels) if lab != "neither"]
    neg = [d for d, lab in zip(dropped, labels) if lab == "neither"]
    return sum(pos) / len(pos), sum(neg) / len(neg)


def test_davidson_recall_and_false_drops(tmp_path: Path, corpora: Path) -> None:
    safety = corpora / "safety_offensive_text"
    docs, labels = _davidson(safety)
    assert len(docs) == 1500 and labels.count("neither") == 500
    word = [WordBlocklist().filter(d) is not True for d in docs]
    scores = toxicity_scores([d.text for d in docs])
    tox = [s > 0.8 for s in scores]
    # LDNOOBW English (C4's list) as a user-provided list, for comparison; never copied into the repo.
    terms = [
        ln.split("\t", 1)[1]
        for ln in (safety / "ldnoobw_wordlists.tsv").read_text("utf-8").splitlines()[1:]
        if ln.startswith("en\t")
    ]
    (tmp_path / "en.txt").write_text("\n".join(terms), encoding="utf-8")
    ldnoobw = WordBlocklist(lists={"en": tmp_path / "en.txt"}, use_packaged_lists=False)
    ld = [ldnoobw.filter(d) is not True for d in docs]
    table = {
        "word_blocklist (glin-profanity en)": _rates(word, labels),
        "word_blocklist (LDNOOBW en, user list)": _rates(ld, labels),
        "toxicity (max_score 0.8)": _rates(tox, labels),
        "word_blocklist + toxicity": _rates([a or b for a, b in zip(word, tox)], labels),
    }
    print("\nfilter                                   recall(hate+offensive)  false_drop(neither)")
    for name, (rec, fdr) in table.items():
        print(f"{name:40s} {rec:22.3f} {fdr:20.3f}")
    # Measured: glin 0.740 / 0.044, LDNOOBW 0.713 / 0.026, toxicity 0.843 / 0.020, both 0.886 / 0.056.
    bounds = {
        "word_blocklist (glin-profanity en)": (0.70, 0.07),
        "word_blocklist (LDNOOBW en, user list)": (0.68, 0.05),
        "toxicity (max_score 0.8)": (0.80, 0.04),
        "word_blocklist + toxicity": (0.85, 0.08),
    }
    for name, (min_recall, max_fdr) in bounds.items():
        rec, fdr = table[name]
        assert rec >= min_recall and fdr <= max_fdr, (name, rec, fdr)


def test_toxicity_batch_equals_one_by_one() -> None:
    texts = ["you are a fucking idiot, shut up", "The committee approved the budget.", "", "lol ok you suck"]
    docs = [doc(t) for t in texts] + [doc(texts[0], lang="de")]
    for f in (Toxicity(), Toxicity(chunk_chars=10)):
        assert f.filter_batch(docs) == [f.filter(d) for d in docs]
        assert f.filter_batch(docs)[0][:2] == (False, "toxicity_score") and f.filter_batch(docs)[4] is True
