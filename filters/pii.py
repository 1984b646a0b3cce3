"""PII redaction: emails, phone numbers and public IP addresses (secrets, API keys and passwords: filters/secrets.py).

Every pattern is linear in the text length: each one either starts at a position a lookbehind pins to the start
of a character run, or uses bounded quantifiers only, and no pattern nests an unbounded repetition inside
another. So a 50 MB single-line document costs a few regex scans, never exponential backtracking. A cheap
substring pre-check ("@", "+", ".", "::") skips a pattern when its anchor is absent.

Placeholders follow the Kind-<TAG> style of BigCode's StarCoder PII pipeline (Li et al. 2023, arXiv 2305.06161):
`<EMAIL>`, `<PHONE>`, `<IP_ADDRESS>` (and `<SECRET>` in filters/secrets.py).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Sequence

from filters.base import Modifier
from schemas import Document

EMAIL_PLACEHOLDER = "<EMAIL>"
PHONE_PLACEHOLDER = "<PHONE>"
IP_PLACEHOLDER = "<IP_ADDRESS>"
SECRET_PLACEHOLDER = "<SECRET>"  # filters/secrets.py's

# --- emails -------------------------------------------------------------------------------------------------
# Local part starts a run (lookbehind) and is bounded (RFC 5321: 64); domain labels bounded (63), TLD letters.
# "icon@2x.png" (retina image names) is excluded by the negative lookahead.
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@(?!\d+x\.)"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62})){0,8}\.[A-Za-z]{2,24}"
    r"(?![A-Za-z0-9\-]|\.[A-Za-z0-9])"
)


def _not_git_remote(s: str) -> bool:
    """git@host (SSH remotes, "git@github.com:org/repo.git") is a service account, not a person."""
    return not s.startswith("git@")


# --- phones -------------------------------------------------------------------------------------------------
# NANP with a consistent separator: 555-123-4567, 555.123.4567, 555 123 4567, (555) 123-4567, +1 555 123 4567.
_US_PHONE_RE = re.compile(
    r"(?<![\w+.\-/])(?:\+?1[ .\-]?)?(?:\(\d{3}\)[ .\-]?\d{3}[ .\-]\d{4}|\d{3}([.\- ])\d{3}\1\d{4})(?![\w]|[.\-/]\d)"
)
# International, "+" then country code: +44 20 7946 0958, +33 1 23 45 67 89, +49 (0)30 123456, +14155552671.
# Bounded greedy run, then validated in Python (digit count, separators).
_INTL_PHONE_RE = re.compile(r"(?<![\w+)\].])\+\d[\d ().\-]{5,22}\d(?![\w]|[.\-]\d)")
_SEP_RUN = re.compile(r"[ .\-]{2,}")


def _valid_intl_phone(s: str) -> bool:
    digits = sum(c.isdigit() for c in s)
    if not 8 <= digits <= 15:  # E.164: at most 15 digits; fewer than 8 is a country code plus a short number
        return False
    if _SEP_RUN.search(s.replace(") ", ")").replace(" (", "(")):
        return False  # "+3 - 4" style arithmetic, or two numbers side by side
    if s.count("(") != s.count(")"):
        return False
    seps = [c for c in s if c in " .-"]
    if seps == ["."]:
        return False  # "+3.14159265": a signed decimal, not a phone
    # Mixed "." with other separators reads as arithmetic or a version.
    return not ("." in seps and len(set(seps)) > 1)


# --- IP addresses -------------------------------------------------------------------------------------------
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# Not inside a longer dotted run (version strings "1.2.3.4.5", OIDs) nor after a "v"/letter ("v1.2.3.4").
_IPV4_RE = re.compile(rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?![\w]|\.\d)")
# Candidate: a hex-and-colon run with at least two colons, validated by the ipaddress module.
_IPV6_RE = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,39}(?![\w:.])")


def _public_ipv4(s: str) -> bool:
    """Only public unicast addresses are PII. Also kept: x.x.x.0 / x.x.x.255 (networks, broadcasts, .NET assembly
    versions like 4.0.0.0) and all-single-digit addresses (version strings like "zlib 1.3.1.1"; the public ones,
    1.1.1.1 or 8.8.8.8, are shared resolvers, not a person's address)."""
    try:
        ip = ipaddress.IPv4Address(s)
    except ValueError:
        return False
    octets = s.split(".")
    if octets[3] in ("0", "255") or all(len(o) == 1 for o in octets):
        return False
    return ip.is_global and not ip.is_multicast


def _public_ipv6(s: str) -> bool:
    try:
        ip = ipaddress.IPv6Address(s)
    except ValueError:
        return False
    # is_reserved covers ::/8 etc.: "b[::2]" in Python slices parses as the address ::2.
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


def redact_matches(
    text: str, pattern: re.Pattern[str], placeholder: str, accept: Callable[[str], bool] | None = None
) -> tuple[str, int]:
    """Replace matches of `pattern` that pass `accept`; return (new text, number replaced)."""
    count = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal count
        if accept is not None and not accept(m.group(0)):
            return m.group(0)
        count += 1
        return placeholder

    return pattern.sub(repl, text), count


PII_KINDS = ("email", "phone", "ip")


class PIIRedactor(Modifier):
    """Replace emails, phone numbers and public IP addresses with placeholders.

    Scope (precision first, since false redactions damage STEM and code text):
    - emails: RFC-5321-sized local part and dotted domain with an alphabetic TLD.
    - phones: NANP numbers in the usual groupings (3-3-4 with one consistent separator, or "(555) 123-4567",
      optional +1), and international numbers written with a leading "+" (8-15 digits, E.164). Bare digit runs,
      national formats without "+" ("030 1234567") and "00"-prefixed numbers are NOT redacted: they cannot be
      told apart from quantities, years, ids and answers.
    - IPs: IPv4 and IPv6 that `ipaddress` calls global (like datatrove's PIIFormatter, which replaces public IPs
      only): private, loopback, link-local, reserved, documentation and multicast ranges are kept, and so are
      IPv4 addresses ending in .0 or .255 and all-single-digit ones (version strings such as "1.3.1.1").
    - "git@host" (SSH remotes) is not treated as an email.

    Returns one (`pii_<kind>`, count) per kind replaced.

    Args:
        kinds: subset of ("email", "phone", "ip") to redact.
        domains: document domains this applies to; None: all.
    """

    name = "pii"

    def __init__(self, kinds: Sequence[str] = PII_KINDS, domains: Sequence[str] | None = None) -> None:
        unknown = set(kinds) - set(PII_KINDS)
        if unknown:
            raise ValueError(f"unknown PII kind(s) {sorted(unknown)}; choose from {PII_KINDS}")
        self.kinds = tuple(k for k in PII_KINDS if k in kinds)
        self.domains = frozenset(domains) if domains is not None else None

    def redact(self, text: str) -> tuple[str, Counter[str]]:
        """Redacted text and {reason: count}."""
        counts: Counter[str] = Counter()
        if "email" in self.kinds and "@" in text:
            text, n = redact_matches(text, _EMAIL_RE, EMAIL_PLACEHOLDER, _not_git_remote)
            counts["pii_email"] += n
        if "phone" in self.kinds:
            if "+" in text:
                text, n = redact_matches(text, _INTL_PHONE_RE, PHONE_PLACEHOLDER, _valid_intl_phone)
                counts["pii_phone"] += n
            text, n = redact_matches(text, _US_PHONE_RE, PHONE_PLACEHOLDER)
            counts["pii_phone"] += n
        if "ip" in self.kinds:
            if "." in text:
                text, n = redact_matches(text, _IPV4_RE, IP_PLACEHOLDER, _public_ipv4)
                counts["pii_ip"] += n
            if "::" in text or text.count(":") >= 7:
                text, n = redact_matches(text, _IPV6_RE, IP_PLACEHOLDER, _public_ipv6)
                counts["pii_ip"] += n
        return text, +counts

    def modify(self, doc: Document) -> list[tuple[str, float | None]]:
        doc.text, counts = self.redact(doc.text)
        return [(reason, float(n)) for reason, n in counts.items()]
