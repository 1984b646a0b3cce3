"""Safety filters: URL blocklist, per-language bad-word blocklist, and a toxicity classifier.

All word lists and the model come from pip packages, located on disk and sha256-checked through
`filters.assets`; nothing is downloaded at run time:

- URL lists: datatrove 0.10.1 ships `assets/url_filterblacklistsv0_3_0.tar.gz` (UT1-derived domain and URL
  lists, as used by FineWeb's URL filter) and `banned_words.txt` / `banned_subwords.txt` /
  `soft_banned_words.txt`. We read them straight from the package (datatrove's own `URLFilter` extracts the
  tarball into a cache dir and calls tldextract, which fetches the public-suffix list from the network).
- Bad words: glin-profanity 4.1.0 (MIT) ships one JSON list per language, LDNOOBW-like (the lists C4 used,
  Raffel et al. 2020, arXiv 1910.10683). 23 languages: ar cs da de en eo es fa fi fr hi hu it ja ko nl no pl pt
  ru sv th tr zh. Other languages can be given as user list files.
- Toxicity: alt-profanity-check 1.9.1 ships a TF-IDF vectorizer and a calibrated linear SVM trained on English
  offensive-language data (`predict_prob`). English only.
"""

from __future__ import annotations

import json
import re
import tarfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from filters.assets import ASSETS, Asset, asset_path
from filters.base import Filter
from schemas import Document

_DATATROVE_INSTALL = "pip install 'datatrove[processing]==0.10.1'"
_GLIN_INSTALL = "pip install glin-profanity==4.1.0"
_PROFANITY_CHECK_INSTALL = "pip install alt-profanity-check==1.9.1"


def _register(name: str, package: str, relpath: str, sha256: str, install: str, dist: str | None = None) -> None:
    ASSETS.setdefault(name, Asset(name, package, relpath, sha256, install, dist))


# --- assets -------------------------------------------------------------------------------------------------
_register(
    "datatrove.url_blacklists",
    "datatrove",
    "assets/url_filterblacklistsv0_3_0.tar.gz",
    "b37eefe1f3103dfa46b21b3f407b8b23cec2958ea22028700e6cc44d80f55e9e",
    _DATATROVE_INSTALL,
)
_register(
    "datatrove.banned_words",
    "datatrove",
    "assets/banned_words.txt",
    "7aae5109ccc4d8357167168fa3a91331fa2fafd8eb8cc9c38cc9147c2610fab0",
    _DATATROVE_INSTALL,
)
_register(
    "datatrove.banned_subwords",
    "datatrove",
    "assets/banned_subwords.txt",
    "4770445cd8d2b16495efde88bc4efc3a520bdc0f3137d14d85cd3d89b194a232",
    _DATATROVE_INSTALL,
)
_register(
    "datatrove.soft_banned_words",
    "datatrove",
    "assets/soft_banned_words.txt",
    "e5043030accca33b0e368a693997576beea4c58279da641bff40b4e02281b063",
    _DATATROVE_INSTALL,
)
_register(
    "profanity_check.vectorizer",
    "profanity_check",
    "data/vectorizer.joblib",
    "19c5200dc6a41f026e0558e2f164f5fe8d8f58e502b46b37e4385037fcfa4831",
    _PROFANITY_CHECK_INSTALL,
    "alt-profanity-check",
)
_register(
    "profanity_check.model",
    "profanity_check",
    "data/model.joblib",
    "aeafc04849d4d93db4721cf30a86ebf22085595294b8a07d51918e7fa98f538b",
    _PROFANITY_CHECK_INSTALL,
    "alt-profanity-check",
)

# ISO 639-1 code (as lid.176 labels them) -> (glin-profanity file stem, sha256 of glin-profanity 4.1.0's file).
_GLIN_LISTS: dict[str, tuple[str, str]] = {
    "ar": ("arabic", "db2a8e8f1a3cfd253c239dd5fa98c1d9f2fa236a4399dd71151fbd93421c5156"),
    "cs": ("czech", "40bc78840d18bc0e97e47f9f10d8e909229631131b41ce0ce365c90cb08e5919"),
    "da": ("danish", "cab08f057145725147fc7ce8c06d38d19f5b65ccb190a56a3b93e4b455f44c11"),
    "de": ("german", "9c23a511cc28db1afed3ba1c5c02b3e15efe5c0dfb10b4b9d8ae1b7918038fbf"),
    "en": ("english", "0163c569bbe4dc868655154c1fff4157ed00c4cf8d3d1bc8218795c701545e0e"),
    "eo": ("esperanto", "03c4a73dac4e359e6794e1c954d46b341e0fc763d886f9a0e1924928de0ac17d"),
    "es": ("spanish", "c2468350603e44ddc42403279cd4902a3d336769c87067893d0f9fb9e937f5f7"),
    "fa": ("persian", "547f7cf5f0bc06104fb30b552951b5543dcec18a9e3580beefac12d085fb7a85"),
    "fi": ("finnish", "47c835d543daa755e6b4ee55ec7b506a68a33c77f8c458137ff9174d1170067d"),
    "fr": ("french", "351645f295755cf6a1f467bbb553f8fdeb265b06c5dbdd313ca6497a3bc827b4"),
    "hi": ("hindi", "6ff6d0a56ad41a2a1510a222984be4ad1d18fdf146bf33fc444adb46bec5a987"),
    "hu": ("hungarian", "60760bbfcf8e0695c551e085896458529fcb5711bcca11b04d2a09dc449298b0"),
    "it": ("italian", "22acf78a5400c7927afd10be0de3e7d422a2690cf829857648d8ca4de7a3a4b0"),
    "ja": ("japanese", "6b937daf86a167a1d6b13c17efc5d78617d6f897903a495c66ec4e7857f567b6"),
    "ko": ("korean", "194b15c456849626ce0e614662053c863718662536b9da69f2b63b1eb90342dc"),
    "nl": ("dutch", "ff128963dd727ebdf180d0ef8ec3a51c6275c7c06d0a465aa31ac16111925dfe"),
    "no": ("norwegian", "0acfaeade557a0cecd5c8fade324f3c62724e892f72d86dc1d8c712414e37644"),
    "pl": ("polish", "68c7f2166f193b586462441ac632361b3fdd863839b10d799d4bc404c45cd8cb"),
    "pt": ("portuguese", "41aae0c514ed785600579982db7c720b23006dcc51429c6a5e13977cef44a387"),
    "ru": ("russian", "a3ce288fa73f7f184301e6ec7eaf7f14de5f1b4bce88d9a1318ee6e64951a88d"),
    "sv": ("swedish", "d3f2c7f4f7413a6cc101de25dc7960df2876fb7a3437d3ce4499b309592010d6"),
    "th": ("thai", "68094b879f53a521ae4b783f94089ce85dd737f33292e6eef9d2f3acbc88a8ba"),
    "tr": ("turkish", "d9979da11be5a2ab147ce48e667735cd13324d47b371ec61c67e372c13b2a43a"),
    "zh": ("chinese", "814622971af2f9ad7cbd384772ab3bfd8de6982d5d2545d2b4da097f02e236ec"),
}
for _lang, (_stem, _sha) in _GLIN_LISTS.items():
    _register(
        f"glin_profanity.{_lang}",
        "glin_profanity",
        f"data/dictionaries/{_stem}.json",
        _sha,
        _GLIN_INSTALL,
        "glin-profanity",
    )

BADWORD_LANGUAGES: tuple[str, ...] = tuple(sorted(_GLIN_LISTS))
# Languages written without spaces between words: C4 matches their bad words as plain substrings.
NO_SPACE_LANGUAGES = frozenset({"ja", "th", "zh", "lo", "km", "my", "bo"})
# C4 / datatrove allowlist: common subwords that each dropped >10% of documents of their language.
_C4_ALLOWLIST = {"ja": {"sm", "グロ", "女の子"}, "zh": {"性"}}
_LANG_ALIASES = {"nb": "no", "nn": "no", "iw": "he", "in": "id", "tl": "fil"}


def normalize_lang(lang: str | None) -> str | None:
    """ISO code used to look up a word list: lower case, region/script stripped ("zh-Hans" -> "zh")."""
    if not lang:
        return None
    base = re.split(r"[-_]", lang.strip().lower(), maxsplit=1)[0]
    return _LANG_ALIASES.get(base, base)


# --- URL blocklist ------------------------------------------------------------------------------------------
_URL_WORD_SPLIT = re.compile(r"[^a-z0-9]+")


def _norm_word(w: str) -> str:
    """datatrove's URL word normalisation: alphanumerics only, lower case."""
    return _URL_WORD_SPLIT.sub("", w.lower())


def _read_list(path: Path, normalize: bool) -> set[str]:
    out: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out.add(_norm_word(line) if normalize else line.lower())
    out.discard("")
    return out


def _hash64(s: bytes) -> int:
    import xxhash

    return xxhash.xxh64_intdigest(s)


@lru_cache(maxsize=1)
def _packaged_url_lists() -> tuple[Any, frozenset[str]]:
    """(sorted uint64 xxh64 hashes of the 4.5M blocked domains, set of blocked URLs without scheme).

    NOTE: the domain list is 123 MB / 4.56M lines; a Python set of it costs ~600 MB, the sorted hash array
    36 MB (a 64-bit collision among 4.6M keys has probability ~1e-6). Loaded once per process.
    """
    import numpy as np
    import xxhash

    h = xxhash.xxh64_intdigest
    path = asset_path("datatrove.url_blacklists")
    chunks: list[Any] = []
    urls: set[str] = set()
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            f = tar.extractfile(member)
            if f is None:
                continue
            if member.name.endswith("urls"):
                urls = {ln.strip().lower() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()}
                continue
            if not member.name.endswith("domains"):
                continue
            tail = b""
            while block := f.read(1 << 24):
                lines = (tail + block).split(b"\n")
                tail = lines.pop()
                chunks.append(np.fromiter((h(x.strip().lower()) for x in lines if x.strip()), dtype=np.uint64))
            if tail.strip():
                chunks.append(np.array([h(tail.strip().lower())], dtype=np.uint64))
    hashes = np.unique(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=np.uint64)
    return hashes, frozenset(urls)


def _url_host_and_rest(url: str) -> tuple[str | None, str]:
    """(lower-case host without port/userinfo/trailing dot, url without scheme and "www.")."""
    u = url.strip()
    if "://" not in u[:16]:
        u = "http://" + u.lstrip("/")
    try:
        parts = urlsplit(u)
        host = parts.hostname
    except ValueError:
        return None, ""
    if not host:
        return None, ""
    host = host.rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    rest = u.split("://", 1)[1].lower()
    rest = rest.removeprefix("www.")
    return host, rest.rstrip("/")


def _parent_domains(host: str) -> list[str]:
    """host and its parents with at least two labels: a.b.example.com -> [a.b.example.com, b.example.com,
    example.com]. Covers datatrove's registered-domain and fqdn checks without tldextract's network fetch."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(max(len(labels) - 1, 1))]


class UrlBlocklist(Filter):
    """Drop documents whose URL is on a blocklist (FineWeb's URL filter, Penedo et al. 2024, arXiv 2406.17557).

    Checks, in order: the host or any parent domain is a blocked domain (datatrove's 4.56M-domain UT1-based list
    plus `extra_domains`); the URL (without scheme / "www.") is a blocked URL; a URL word (split on
    non-alphanumerics) is a banned word; at least `soft_word_threshold` URL words are soft-banned words; a banned
    subword occurs in the URL with non-alphanumerics removed. Documents without a URL are kept.

    Args:
        extra_domains: more domains to block (parents match too: "example.com" blocks "a.example.com").
        extra_urls: more URLs to block (compared without scheme, "www." and trailing slash).
        extra_banned_words: more words that drop a URL containing them as a whole URL word.
        extra_banned_subwords: more substrings that drop a URL (matched on the alphanumeric-only URL).
        use_packaged_lists: also use datatrove's shipped lists (False: only the extra lists; fast to build).
        soft_word_threshold: number of soft-banned URL words that drop a document (datatrove: 2); None: off.
        domains: document domains (web/stem/code) this filter applies to; None: all.
    """

    name = "url_blocklist"

    def __init__(
        self,
        extra_domains: Iterable[str] = (),
        extra_urls: Iterable[str] = (),
        extra_banned_words: Iterable[str] = (),
        extra_banned_subwords: Iterable[str] = (),
        use_packaged_lists: bool = True,
        soft_word_threshold: int | None = 2,
        domains: Sequence[str] | None = None,
    ) -> None:
        self.domains = frozenset(domains) if domains is not None else None
        self.use_packaged_lists = use_packaged_lists
        self.soft_word_threshold = soft_word_threshold
        self.extra_domains = {d.strip().lower().rstrip(".") for d in extra_domains if d.strip()}
        self.extra_domains = {d.removeprefix("www.") for d in self.extra_domains}
        self.extra_urls = {_url_host_and_rest(u)[1] for u in extra_urls if u.strip()}
        self.banned_words = {_norm_word(w) for w in extra_banned_words} - {""}
        subwords = {_norm_word(w) for w in extra_banned_subwords} - {""}
        self.soft_banned_words: set[str] = set()
        if use_packaged_lists:
            self.banned_words |= _read_list(asset_path("datatrove.banned_words"), normalize=True)
            subwords |= _read_list(asset_path("datatrove.banned_subwords"), normalize=True)
            self.soft_banned_words = _read_list(asset_path("datatrove.soft_banned_words"), normalize=True)
        # One alternation of literals; URLs are short so the scan cost is negligible.
        self._subword_re = (
            re.compile("|".join(map(re.escape, sorted(subwords, key=len, reverse=True)))) if subwords else None
        )
        self._domain_hashes: Any = None
        self._blocked_urls: frozenset[str] = frozenset()

    def _load(self) -> None:
        if self._domain_hashes is None and self.use_packaged_lists:
            self._domain_hashes, self._blocked_urls = _packaged_url_lists()

    def _domain_blocked(self, host: str) -> bool:
        candidates = _parent_domains(host)
        if any(c in self.extra_domains for c in candidates):
            return True
        if self._domain_hashes is None or not len(self._domain_hashes):
            return False
        import numpy as np

        keys = np.array([_hash64(c.encode()) for c in candidates], dtype=np.uint64)
        idx = np.searchsorted(self._domain_hashes, keys)
        idx = np.minimum(idx, len(self._domain_hashes) - 1)
        return bool(np.any(self._domain_hashes[idx] == keys))

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if not doc.url:
            return True
        self._load()
        host, rest = _url_host_and_rest(doc.url)
        if host and self._domain_blocked(host):
            return False, "url_blocklist_domain"
        if rest and (rest in self.extra_urls or rest in self._blocked_urls):
            return False, "url_blocklist_url"
        lowered = doc.url.lower()
        words = set(_URL_WORD_SPLIT.split(lowered))
        if self.banned_words and not self.banned_words.isdisjoint(words):
            return False, "url_blocklist_banned_word"
        soft = self.soft_word_threshold
        if soft is not None and self.soft_banned_words and len(self.soft_banned_words & words) >= soft:
            return False, "url_blocklist_soft_banned_words"
        if self._subword_re is not None and self._subword_re.search(_URL_WORD_SPLIT.sub("", lowered)):
            return False, "url_blocklist_banned_subword"
        return True


# --- word blocklist -----------------------------------------------------------------------------------------
def load_word_list(path: str | Path) -> set[str]:
    """Terms from a user list: one term per line (blank lines and lines starting with "#" skipped), or a JSON
    list / {"words": [...]} object (glin-profanity's format)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"word list {p} does not exist; give one term per line")
    text = p.read_text(encoding="utf-8")
    if p.suffix == ".json":
        data = json.loads(text)
        items = data["words"] if isinstance(data, dict) else data
        return {str(w).strip().lower() for w in items if str(w).strip()}
    return {ln.strip().lower() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")}


def packaged_word_list(lang: str) -> set[str]:
    """glin-profanity's list for `lang` (ISO code), sha256-checked; empty set if there is none for it."""
    if lang not in _GLIN_LISTS:
        return set()
    return load_word_list(asset_path(f"glin_profanity.{lang}"))


def _trie_regex(words: Iterable[str]) -> str:
    """An alternation of literals compiled as a prefix trie, so that the regex engine tries each text position
    against one trie path instead of every word (hundreds of alternatives): linear in text length."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = True

    def emit(node: dict[str, Any]) -> str:
        end = "" in node
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch != ""]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if end:
            # Longest first is not needed for search(): a shorter complete word is already a hit.
            return "(?:" + body + ")?"
        return body

    return emit(trie)


class WordBlocklist(Filter):
    """Drop documents containing bad words of their language (C4's bad-words filter, Raffel et al. 2020,
    arXiv 1910.10683, which dropped a page on any LDNOOBW hit).

    Lists: glin-profanity's per-language lists (23 languages, see `BADWORD_LANGUAGES`), plus user files from
    `lists` ({lang: path}). Matching is on lower-cased text: whole words (not flanked by word characters) for
    space-separated languages, plain substrings for ja/th/zh (and other scripts without spaces), with C4's
    allowlist for ja/zh. Documents whose language has no list are kept.

    Args:
        lists: {ISO code: path of a list file} added to (or, with `use_packaged_lists=False`, replacing) the
            packaged lists.
        use_packaged_lists: use glin-profanity's lists.
        max_badword_ratio: drop when hits / words exceeds this (words: whitespace tokens, or characters for
            no-space languages). 0.0 drops on any hit, as C4 did.
        default_lang: language assumed when `doc.lang` is None; None keeps such documents.
        domains: document domains this filter applies to (default web only: code and math use words like
            "anal", "sex" or "xxx" as identifiers or terms).
    """

    name = "word_blocklist"

    def __init__(
        self,
        lists: Mapping[str, str | Path] | None = None,
        use_packaged_lists: bool = True,
        max_badword_ratio: float = 0.0,
        default_lang: str | None = None,
        domains: Sequence[str] | None = ("web",),
    ) -> None:
        if max_badword_ratio < 0:
            raise ValueError(f"max_badword_ratio must be >= 0, got {max_badword_ratio}")
        self.domains = frozenset(domains) if domains is not None else None
        self.user_lists = {normalize_lang(k): load_word_list(v) for k, v in (lists or {}).items()}
        self.use_packaged_lists = use_packaged_lists
        self.max_badword_ratio = max_badword_ratio
        self.default_lang = default_lang
        self._regex: dict[str, re.Pattern[str] | None] = {}

    @property
    def languages(self) -> list[str]:
        """ISO codes that have a list."""
        langs = set(self.user_lists)
        if self.use_packaged_lists:
            langs |= set(_GLIN_LISTS)
        return sorted(lng for lng in langs if lng)

    def _pattern(self, lang: str) -> re.Pattern[str] | None:
        if lang not in self._regex:
            words = set(self.user_lists.get(lang, set()))
            if self.use_packaged_lists:
                words |= packaged_word_list(lang)
            words -= _C4_ALLOWLIST.get(lang, set())
            words = {w for w in words if w}
            if not words:
                self._regex[lang] = None
            else:
                body = _trie_regex(sorted(words))
                pat = body if lang in NO_SPACE_LANGUAGES else rf"(?<!\w)(?:{body})(?!\w)"
                self._regex[lang] = re.compile(pat)
        return self._regex[lang]

    def filter(self, doc: Document) -> bool | tuple[bool, str, float]:
        lang = normalize_lang(doc.lang) or normalize_lang(self.default_lang)
        if lang is None:
            return True
        pattern = self._pattern(lang)
        if pattern is None:
            return True
        text = doc.text.lower()
        if self.max_badword_ratio == 0.0:
            m = pattern.search(text)
            return True if m is None else (False, f"word_blocklist_{lang}", 1.0)
        hits = sum(1 for _ in pattern.finditer(text))
        if not hits:
            return True
        n = len(text) - text.count(" ") if lang in NO_SPACE_LANGUAGES else len(text.split())
        ratio = hits / max(n, 1)
        if ratio > self.max_badword_ratio:
            return False, f"word_blocklist_{lang}", ratio
        return True


# --- toxicity -----------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def load_toxicity_model() -> tuple[Any, Any]:
    """(TfidfVectorizer, CalibratedClassifierCV) of alt-profanity-check, loaded from its package files.

    sklearn warns (InconsistentVersionWarning) when the pickles come from another sklearn version; that is
    turned into a clear error, since a mismatched pickle can silently change scores.
    """
    import joblib

    vec_path, model_path = asset_path("profanity_check.vectorizer"), asset_path("profanity_check.model")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vectorizer = joblib.load(vec_path)
        model = joblib.load(model_path)
    bad = [w for w in caught if "InconsistentVersionWarning" in type(w.message).__name__]
    if bad:
        raise RuntimeError(
            f"alt-profanity-check's model was pickled with another scikit-learn version ({bad[0].message}); "
            f"install matching versions: `{_PROFANITY_CHECK_INSTALL}`"
        )
    return vectorizer, model


def toxicity_scores(texts: Sequence[str]) -> list[float]:
    """Probability that each text is offensive, from alt-profanity-check's model (English)."""
    vectorizer, model = load_toxicity_model()
    if not texts:
        return []
    x = vectorizer.transform(list(texts))
    members = getattr(model, "calibrated_classifiers_", None)
    if members and all(len(c.calibrators) == 1 and hasattr(c.estimator, "coef_") for c in members):
        # Same arithmetic as CalibratedClassifierCV.predict_proba for a binary linear model (mean over the CV
        # members of sigmoid(decision function)), without sklearn's per-call validation: 13x faster per document.
        probs = sum(
            c.calibrators[0].predict((x @ c.estimator.coef_.T).ravel() + c.estimator.intercept_[0]) for c in members
        )
        return [float(p) for p in probs / len(members)]
    return [float(p) for p in model.predict_proba(x)[:, 1]]


class Toxicity(Filter):
    """Drop documents whose offensive-language probability exceeds `max_score`.

    Model: alt-profanity-check's TF-IDF + calibrated linear SVM (English; trained on short comments and tweets).
    TF-IDF is L2-normalised over the whole text, so one slur in a long page scores low; `chunk_chars` scores
    line-aligned chunks instead and keeps the maximum. The score is recorded in the lineage row.
    Default `max_score` 0.8 was chosen on the Davidson et al. (ICWSM 2017) tweets: see BENCHMARKS.md.

    Args:
        max_score: drop when the score is above this; None records nothing and keeps everything.
        languages: `doc.lang` values scored (default English only: the model is English); None: all documents.
        chunk_chars: if set, score chunks of about this many characters and use the highest.
        max_chars: score at most this many leading characters (bounds the cost on huge documents); None: all.
        domains: document domains this filter applies to (default web).
    """

    name = "toxicity"

    def __init__(
        self,
        max_score: float | None = 0.8,
        languages: Sequence[str] | None = ("en",),
        chunk_chars: int | None = None,
        max_chars: int | None = 100_000,
        domains: Sequence[str] | None = ("web",),
    ) -> None:
        if max_score is not None and not 0.0 <= max_score <= 1.0:
            raise ValueError(f"max_score must be in [0, 1], got {max_score}")
        if chunk_chars is not None and chunk_chars <= 0:
            raise ValueError(f"chunk_chars must be positive, got {chunk_chars}")
        self.max_score = max_score
        self.languages = frozenset(languages) if languages is not None else None
        self.chunk_chars = chunk_chars
        self.max_chars = max_chars
        self.domains = frozenset(domains) if domains is not None else None
        load_toxicity_model()  # fail at construction, not mid-run, when the package is missing

    def score(self, text: str) -> float:
        """Offensive-language probability of `text` (max over chunks when `chunk_chars` is set)."""
        if self.max_chars is not None:
            text = text[: self.max_chars]
        if not text.strip():
            return 0.0
        if not self.chunk_chars or len(text) <= self.chunk_chars:
            return toxicity_scores([text])[0]
        chunks, cur, size = [], [], 0
        for line in text.splitlines(keepends=True):
            cur.append(line)
            size += len(line)
            if size >= self.chunk_chars:
                chunks.append("".join(cur))
                cur, size = [], 0
        if cur:
            chunks.append("".join(cur))
        return max(toxicity_scores(chunks))

    def filter(self, doc: Document) -> bool | tuple[bool, str, float]:
        if self.max_score is None:
            return True
        if self.languages is not None and normalize_lang(doc.lang) not in self.languages:
            return True
        s = self.score(doc.text)
        if s > self.max_score:
            return False, "toxicity_score", s
        return True
