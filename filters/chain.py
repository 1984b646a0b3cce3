"""Build the filter chain of a stage from its `[filters.<name>]` config tables.

The chain order is fixed (cheap and decisive first, text-changing modifiers last so that nothing is
redacted in a document that is dropped later), as in FineWeb's pipeline: gutenberg_boilerplate (books: the
boilerplate goes before anything judges the text), langid, url_blocklist, gopher_repetition, gopher_quality, c4,
fineweb, code, books_quality, word_blocklist, word_blocklist_books, toxicity, pii, secrets (one module per
filter, as datatrove). Each table's keys are the filter's constructor arguments; `enabled = false`
leaves the filter out; `domains = [...]` limits any filter to those document domains (quality
heuristics are per domain); a filter with no table runs with its defaults.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from filters.base import Step
from schemas import DOMAINS

# config name -> (module, class), in chain order
FILTERS: dict[str, tuple[str, str]] = {
    # First: a book's Project Gutenberg licence must not be what language ID and the quality rules judge.
    "gutenberg_boilerplate": ("filters.gutenberg_boilerplate", "GutenbergBoilerplate"),
    "langid": ("filters.langid", "LangId"),
    "url_blocklist": ("filters.url_blocklist", "UrlBlocklist"),
    "gopher_repetition": ("filters.gopher_repetition", "GopherRepetition"),
    "gopher_quality": ("filters.gopher_quality", "GopherQuality"),
    "c4": ("filters.c4", "C4Quality"),
    "fineweb": ("filters.fineweb", "FineWebQuality"),
    "code": ("filters.code", "CodeQuality"),
    "books_quality": ("filters.books_quality", "BooksQuality"),
    "word_blocklist": ("filters.word_blocklist", "WordBlocklist"),
    "word_blocklist_books": ("filters.word_blocklist", "BooksWordBlocklist"),
    "toxicity": ("filters.toxicity", "Toxicity"),
    "pii": ("filters.pii", "PIIRedactor"),
    "secrets": ("filters.secrets", "SecretRedactor"),
}


class FilterConfigError(ValueError):
    """A `[filters.*]` table is wrong; the message names the filter and the key."""


def _resolve(config: dict[str, Any]) -> list[tuple[str, type, dict[str, Any], list[str] | None]]:
    """Check every `[filters.*]` table against its filter's constructor, without building anything.

    Returns (name, class, kwargs, domains override) for each enabled filter, in chain order.
    """
    unknown = set(config) - set(FILTERS)
    if unknown:
        raise FilterConfigError(f"unknown filter(s) {sorted(unknown)}; known: {list(FILTERS)}")
    resolved = []
    for name, (module, cls_name) in FILTERS.items():
        table = dict(config.get(name, {}))
        if not isinstance(table.pop("enabled", True), bool):
            raise FilterConfigError(f"[filters.{name}]: 'enabled' must be true or false")
        if not config.get(name, {}).get("enabled", True):
            continue
        cls = getattr(importlib.import_module(module), cls_name)
        params = inspect.signature(cls.__init__).parameters
        domains = table.pop("domains", None) if "domains" not in params else None
        if domains is not None and (not isinstance(domains, list) or not set(domains) <= set(DOMAINS)):
            raise FilterConfigError(f"[filters.{name}]: 'domains' must be a list drawn from {list(DOMAINS)}")
        bad = [k for k in table if k not in params]
        if bad:
            allowed = [p for p in params if p != "self"]
            raise FilterConfigError(f"[filters.{name}]: unknown key(s) {bad}; allowed: {allowed}")
        resolved.append((name, cls, table, domains))
    return resolved


def validate_chain_config(config: dict[str, Any]) -> None:
    """Raise FilterConfigError for an unknown filter or key (cheap: builds no filter, loads no model)."""
    _resolve(config)


def build_chain(config: dict[str, Any]) -> list[Step]:
    """Instantiate the configured filters in chain order.

    Args:
        config: `{name: {kwarg: value, "enabled": bool, "domains": [...]}}` from the stage file's `[filters]`.
    """
    chain: list[Step] = []
    for name, cls, kwargs, domains in _resolve(config):
        try:
            step = cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise FilterConfigError(f"[filters.{name}]: {e}") from e
        if domains is not None:
            step.domains = frozenset(domains)
        chain.append(step)
    return chain
