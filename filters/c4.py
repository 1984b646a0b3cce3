"""C4's line rules (Raffel et al. 2020, JMLR 21(140), section 2.2), decisions and cleaned text identical to
datatrove 0.10's `C4QualityFilter` (its line rules; the bad-words list is `word_blocklist`).

C4's sentence count is skipped when at least `min_num_sentences` lines are kept (each kept line holds at least
one sentence).

Scripts without spaces between words (`filters.segmenters`: Chinese, Japanese, Thai, Lao, Khmer, Myanmar, Tibetan;
Ethiopic with its wordspace): a line's words (`min_words_per_line`, `max_word_length`) are the segmenter's, not
whitespace chunks (a Chinese line is one chunk), and sentences end at the script's own signs (。！？ ။ ។ ། ...).
Every other language keeps datatrove's whitespace words and sentence splitter (English exactly; elsewhere a
sentence also ends at a sign such as Armenian "։" that the language's tokenizer left inside a word, see
`filters.text_features._Tokenizer.sentences`).
"""

from __future__ import annotations

import re

from filters.base import FilterResult
from filters.prose_filter import ProseFilter
from filters.text_features import TextFeatures, tokenizer_for
from schemas import Document

_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_END_PUNCTUATION = (".", "?", "!", '"', "'")
_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


class C4Quality(ProseFilter):
    """C4's line rules (Raffel et al. 2020, JMLR 21(140), section 2.2), as datatrove's `C4QualityFilter`.

    Lines are dropped when a word is longer than `max_word_length`, when they lack terminal punctuation (if
    `filter_no_terminal_punct`), have fewer than `min_words_per_line` words, mention javascript or a cookie /
    terms policy; wikipedia citations are removed; the document is dropped for "lorem ipsum", a curly bracket
    or fewer than `min_num_sentences` sentences in the kept lines. The bad-words list is not used.

    NOTE: datatrove writes the kept lines back into `doc.text` (FineWeb's text is the cleaned one, and
    FineWebQuality then judges it). `remove_lines=True` does the same, so the whole chain's decisions and
    texts match datatrove's; False leaves the text alone (the check is then a pure filter).

    Args:
        filter_no_terminal_punct: drop lines without terminal punctuation (C4: True; FineWeb: False).
        min_num_sentences: sentences required in kept lines (5); None turns it off.
        min_words_per_line: words a line needs (3); None turns it off.
        max_word_length: longest word a line may hold (1000); None turns it off.
        filter_lorem_ipsum, filter_javascript, filter_curly_bracket, filter_policy, remove_citations: switches.
        remove_lines: write the kept lines back into `doc.text`, as datatrove.
        language: sentence-splitter language; None follows `doc.lang`.
    """

    name = "c4"
    domains = frozenset({"web", "stem"})

    def __init__(
        self,
        filter_no_terminal_punct: bool = True,
        min_num_sentences: int | None = 5,
        min_words_per_line: int | None = 3,
        max_word_length: int | None = 1000,
        filter_lorem_ipsum: bool = True,
        filter_javascript: bool = True,
        filter_curly_bracket: bool = True,
        filter_policy: bool = True,
        remove_citations: bool = True,
        remove_lines: bool = True,
        language: str | None = None,
    ) -> None:
        self.filter_no_terminal_punct = filter_no_terminal_punct
        self.min_num_sentences = min_num_sentences
        self.min_words_per_line = min_words_per_line
        self.max_word_length = max_word_length
        self.filter_lorem_ipsum = filter_lorem_ipsum
        self.filter_javascript = filter_javascript
        self.filter_curly_bracket = filter_curly_bracket
        self.filter_policy = filter_policy
        self.remove_citations = remove_citations
        self.remove_lines = remove_lines
        self.language = language

    def decide(self, doc: Document, features: TextFeatures) -> FilterResult:
        kept: list[str] = []
        lang = features.prose(doc, self.language).lang
        tokenizer = tokenizer_for(lang)
        for line in doc.text.splitlines():
            line = line.strip()
            words = tokenizer.line_words(line)
            if self.max_word_length is not None and any(len(w) > self.max_word_length for w in words):
                continue
            if self.remove_citations:
                line = _CITATION.sub("", line)
            if self.filter_no_terminal_punct and (not line.endswith(_END_PUNCTUATION) or line.endswith("...")):
                continue
            if self.min_words_per_line is not None and len(words) < self.min_words_per_line:
                continue
            lower = line.lower()
            if self.filter_lorem_ipsum and "lorem ipsum" in lower:
                return False, "c4_lorem_ipsum"
            if self.filter_javascript and "javascript" in lower:
                continue
            if self.filter_curly_bracket and "{" in line:
                return False, "c4_curly_bracket"
            if self.filter_policy and any(p in lower for p in _POLICY):
                continue
            kept.append(line)
        if self.min_num_sentences is not None and self.min_num_sentences > 0 and len(kept) < self.min_num_sentences:
            # Each kept line counts at least one sentence, so only short documents need the splitter.
            n_sent = sum(len(tokenizer.sentences(line)) for line in kept)
            if n_sent < self.min_num_sentences:
                return False, "c4_too_few_sentences", float(n_sent)
        if self.remove_lines:
            cleaned = "\n".join(kept).strip()
            if cleaned != doc.text:
                features.replace_text(doc, cleaned, lang)
        return True


# (datatrove filter, datatrove reason) -> our reason; the bench and the equivalence test use it.
DATATROVE_REASONS: dict[tuple[str, str], str] = {
    ("c4", r): f"c4_{r}" for r in ("lorem_ipsum", "curly_bracket", "too_few_sentences")
}
