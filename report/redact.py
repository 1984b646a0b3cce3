"""Everything a report, an artifact or a log line shows from a document goes through `scrub` first.

Examples of dropped documents come from the `ingested` view: raw input, before the PII and secret redactors ran
(a document dropped by language ID never reached them). The same redactors the filter chain uses are applied to
the whole text before it is cut, so a secret is never half-shown at an excerpt's edge.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

EXCERPT_CHARS = 160


@lru_cache(maxsize=1)
def _redactors() -> tuple[Any, Any]:
    from filters.pii import PIIRedactor
    from filters.secrets import SecretRedactor

    return PIIRedactor(), SecretRedactor()


def scrub(text: str | None, path: str | None = None) -> str:
    """`text` with emails, phone numbers, public IPs and secrets replaced by the redactors' placeholders.

    Args:
        text: any text from a run (a document, a URL, a path, a quarantine excerpt).
        path: the document's file path, if known (config files also get bare `KEY=value` secrets redacted).
    """
    if not text:
        return ""
    pii, secrets = _redactors()
    text, _ = secrets.redact(text, path)
    text, _ = pii.redact(text)
    return text


def excerpt(text: str | None, path: str | None = None, chars: int = EXCERPT_CHARS) -> str:
    """A one-line, redacted excerpt of at most `chars` characters (redacted before it is cut)."""
    clean = " ".join(scrub(text, path).split())
    return clean if len(clean) <= chars else clean[: chars - 1].rstrip() + "…"
