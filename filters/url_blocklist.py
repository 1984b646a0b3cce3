"""URL blocklist (FineWeb's URL filter, Penedo et al. 2024, arXiv 2406.17557), from lists shipped in datatrove.

datatrove 0.10.1 ships `assets/url_filterblacklistsv0_3_0.tar.gz` (UT1-derived domain and URL lists) and
`banned_words.txt` / `banned_subwords.txt` / `soft_banned_words.txt`. We read them straight from the package,
sha256-checked through `core.assets` (datatrove's own `URLFilter` extracts the tarball into a cache dir and calls
tldextract, which fetches the public-suffix list from the network).
"""

from __future__ import annotations

import io
import logging
import re
import tarfile
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.assets import ASSETS, asset_path
from core.cache import cache_dir, write_cached
from filters.base import Filter
from schemas import Document

_URL_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
log = logging.getLogger(__name__)


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


# The domain list hashed and sorted once per installed list, then memory-mapped by every run and worker: building
# it costs ~7 s of CPU (4.56M lines hashed, np.unique), loading it ~10 ms. Bump when the hashing or the layout
# of the cached files changes.
_CACHE_VERSION = 1


@lru_cache(maxsize=1)
def _packaged_url_lists() -> tuple[Any, frozenset[str]]:
    """(sorted uint64 xxh64 hashes of the 4.5M blocked domains, set of blocked URLs without scheme).

    NOTE: the domain list is 123 MB / 4.56M lines; a Python set of it costs ~600 MB, the sorted hash array
    36 MB (a 64-bit collision among 4.6M keys has probability ~1e-6). Read from the cache (`core.cache`, keyed by
    the list's sha256) when there, built and cached otherwise; once per process.
    """
    path = asset_path("datatrove.url_blacklists")  # sha256-checked: the cache key below is this file's
    key = f"{ASSETS['datatrove.url_blacklists'].sha256}-v{_CACHE_VERSION}"
    domains_file = cache_dir("url_blocklist") / f"{key}.domains.npy"
    urls_file = domains_file.with_name(f"{key}.urls.txt")
    cached = _load_cached(domains_file, urls_file)
    if cached is not None:
        return cached
    hashes, urls = _read_packaged_url_lists(path)
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, hashes, allow_pickle=False)
    # The URLs first: a reader takes the pair only once the domains file, written last, is there.
    if write_cached(urls_file, "\n".join(sorted(urls)).encode()):
        write_cached(domains_file, buffer.getvalue())
    return hashes, urls


def _load_cached(domains_file: Path, urls_file: Path) -> tuple[Any, frozenset[str]] | None:
    """The cached (hashes, URLs), the hashes memory-mapped (shared by the workers through the page cache), or
    None when a file is missing or unreadable."""
    import numpy as np

    if not (domains_file.is_file() and urls_file.is_file()):
        return None
    try:
        hashes = np.load(domains_file, mmap_mode="r", allow_pickle=False)
        urls = urls_file.read_text(encoding="utf-8")
    except (OSError, ValueError, UnicodeDecodeError) as e:  # a foreign or damaged file: rebuild and overwrite it
        log.warning("URL blocklist cache %s unreadable (%s): rebuilding", domains_file, e)
        return None
    if hashes.dtype != np.uint64 or hashes.ndim != 1:
        log.warning(
            "URL blocklist cache %s holds %s %s, not uint64 hashes: rebuilding",
            domains_file,
            hashes.dtype,
            hashes.shape,
        )
        return None
    return hashes, frozenset(urls.split("\n")) - {""}


def _read_packaged_url_lists(path: Path) -> tuple[Any, frozenset[str]]:
    """Hash and sort the domains of datatrove's tarball at `path` and read its URLs (the uncached path)."""
    import numpy as np
    import xxhash

    h = xxhash.xxh64_intdigest
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
