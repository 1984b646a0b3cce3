"""Secret redaction: API keys, tokens, private keys and passwords replaced by `<SECRET>`, in every domain.

Every pattern is linear in the text length (bounded quantifiers, no nested unbounded repetition), and a cheap
substring pre-check ("-----BEGIN", "AKIA", "ghp_", ...) skips a pattern when its anchor is absent; see
filters/pii.py for the same rules on personal data. Vendor-shaped secrets are matched here; credential
assignments (`password = "..."`) are found by filters/secret_assignments.py, and whether a value is a secret
(entropy, placeholders, names) is judged by filters/secret_values.py.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

from filters.base import Modifier
from filters.pii import SECRET_PLACEHOLDER, redact_matches
from filters.secret_assignments import Assignments, is_config_path
from filters.secret_values import has_digit, is_placeholder, looks_random, random_suffix
from schemas import Document

__all__ = ["SECRET_KINDS", "SECRET_PLACEHOLDER", "SecretRedactor"]

# kind -> (anchors for the pre-check, pattern, optional validator of the match). Order matters: PEM blocks
# first (they contain base64 that other patterns could nibble), generic assignments last.
_B64 = r"[A-Za-z0-9+/=]"
_SECRET_PATTERNS: list[tuple[str, tuple[str, ...], re.Pattern[str], Callable[[str], bool] | None]] = [
    (
        "private_key",
        ("-----BEGIN",),
        # Bounded body (PEM keys are < 10 kB) that never crosses another BEGIN, so many headers without an END
        # cost one scan in total; a header without END still redacts the base64 lines after it.
        re.compile(
            r"-----BEGIN ([A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----"
            r"(?:(?:(?!-----BEGIN)[\s\S]){0,20000}?-----END ([A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----"
            rf"|(?:\r?\n[A-Za-z0-9\-]{{1,40}}: [^\r\n]{{0,200}})*(?:\r?\n\s{{0,8}}{_B64}{{16,100}})*)"
        ),
        None,
    ),
    (
        "aws_access_key",
        ("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "AROA", "APKA", "ASCA"),
        re.compile(
            r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)"
            r"[A-Z0-9]{16}(?![A-Za-z0-9])"
        ),
        None,
    ),
    (
        "github_token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(
            r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])"
        ),
        None,
    ),
    (
        "slack_token",
        ("xox", "hooks.slack.com/"),
        re.compile(
            r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9\-]{10,250}(?![A-Za-z0-9\-])"
            r"|https://hooks\.slack\.com/services/T[A-Za-z0-9_]{6,20}/B[A-Za-z0-9_]{6,20}/[A-Za-z0-9_]{16,64}"
        ),
        has_digit,
    ),
    (
        "google_api_key",
        ("AIza",),
        re.compile(r"(?<![A-Za-z0-9_\-])AIza[0-9A-Za-z_\-]{35}(?![A-Za-z0-9_\-])"),
        None,
    ),
    (
        "stripe_key",
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"),
        re.compile(
            r"(?<![A-Za-z0-9_])(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}|whsec_[A-Za-z0-9]{24,64})"
            r"(?![A-Za-z0-9_])"
        ),
        random_suffix,
    ),
    (
        "openai_key",
        ("sk-",),
        # sk-<48 alnum> (legacy), sk-proj-/sk-svcacct-/sk-admin-<long>, sk-ant-... (Anthropic) share the shape.
        re.compile(r"(?<![A-Za-z0-9_\-])sk-(?:[a-z]{2,10}-)?[A-Za-z0-9_\-]{20,250}(?![A-Za-z0-9_\-])"),
        lambda s: has_digit(s) and looks_random(s.split("-", 1)[1], 3.5),
    ),
    (
        "jwt",
        ("eyJ",),
        re.compile(
            r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}(?![A-Za-z0-9_\-])"
        ),
        None,
    ),
    (
        "connection_string",
        ("://",),
        # scheme://user:password@host (postgres, mysql, mongodb+srv, redis, amqp, ...): only the password is
        # replaced, group 1 ends just before it. Bounded runs that exclude the delimiters: linear.
        re.compile(
            r"(?i)(?<![A-Za-z0-9+.\-])([a-z][a-z0-9+.\-]{1,20}://[^\s:/@'\"`<>]{1,128}:)"
            r"([^\s/@'\"`<>]{1,128})(?=@[A-Za-z0-9\[])"
        ),
        None,
    ),
]
SECRET_KINDS = tuple(k for k, _, _, _ in _SECRET_PATTERNS) + ("password", "assignment")
# Cheap pre-check for assignments: one of the key words must occur at all.
_ASSIGN_HINT = re.compile(r"(?i)key|secret|token|pass|pwd|auth|credential")


class SecretRedactor(Modifier):
    """Replace API keys, tokens, private keys and passwords with `<SECRET>` (all domains, code included).

    Kinds: private_key (PEM/PGP "-----BEGIN ... PRIVATE KEY-----" blocks), aws_access_key (AKIA/ASIA... ids),
    github_token (ghp_/gho_/ghu_/ghs_/ghr_, github_pat_), slack_token (xox?- tokens, webhook URLs),
    google_api_key (AIza...), stripe_key (sk_/rk_ live/test, whsec_), openai_key (sk-..., also sk-proj-/sk-ant-),
    jwt (three base64url parts starting eyJ), connection_string (the password of scheme://user:password@host),
    and two kinds of credential assignment in code, YAML, JSON, `.env` and INI (`DB_PASSWORD = "..."`,
    `"api_key": "..."`, `password: ...`, `SECRET=...`; the key name is kept, the value replaced):

    - password: a key named password / passwd / passphrase / pass / pwd (`db_pass`, `dbPassword`, `PASSWORD2`)
      with any value of 6+ characters that is not a placeholder ("changeme", "<password>", "${DB_PASS}",
      "{{ pw }}", "xxx", "****", ""), not a name ("DB_PASSWORD", "settings.password") and not an expression.
      People choose passwords, so they need not look random.
    - assignment: a key named secret / token / api_key / access_key / private_key / auth / credentials
      (`client_secret`, `AWS_SECRET_ACCESS_KEY`, `accessToken`) with a value of 16+ characters that looks random
      (>= `min_entropy` bits/char Shannon entropy, two character classes, no placeholder words), as in
      detect-secrets' keyword + entropy plugins. A "Bearer " / "Basic " prefix is kept.

    Quoted values count anywhere; bare values only on their own line (`KEY=value`, `key: value`,
    `key = value  # note`), and in code or unknown text (not a `.env`/INI/YAML/TOML `doc.path`) only when they
    hold a digit or symbol (`password = new_password` is code). Placeholders are kept on purpose: they hold no
    secret, and tutorials and templates that show `password: <password>` are useful text.

    Returns one (`secrets_<kind>`, count) per kind replaced.

    Args:
        kinds: subset of `SECRET_KINDS` to redact (default all).
        min_entropy: entropy threshold (bits/char) for token / key / secret assignments.
        domains: document domains this applies to; None: all.
    """

    name = "secrets"

    def __init__(
        self, kinds: Sequence[str] = SECRET_KINDS, min_entropy: float = 3.0, domains: Sequence[str] | None = None
    ) -> None:
        unknown = set(kinds) - set(SECRET_KINDS)
        if unknown:
            raise ValueError(f"unknown secret kind(s) {sorted(unknown)}; choose from {SECRET_KINDS}")
        self.kinds = frozenset(kinds)
        self.min_entropy = min_entropy
        self.domains = frozenset(domains) if domains is not None else None
        self._assignments = Assignments(min_entropy)

    def redact(self, text: str, path: str | None = None) -> tuple[str, Counter[str]]:
        """Redacted text and {reason: count}.

        Args:
            text: the text.
            path: the document's file path, if known: `.env`, INI and YAML files also get bare values redacted.
        """
        counts: Counter[str] = Counter()
        for kind, anchors, pattern, accept in _SECRET_PATTERNS:
            if kind not in self.kinds or (anchors and not any(a in text for a in anchors)):
                continue
            if kind == "connection_string":
                text, n = _redact_connection_passwords(text, pattern)
            else:
                text, n = redact_matches(text, pattern, SECRET_PLACEHOLDER, accept)
            counts[f"secrets_{kind}"] += n
        if ("password" in self.kinds or "assignment" in self.kinds) and _ASSIGN_HINT.search(text):
            pieces, pos = [], 0
            for start, end, kind in self._assignments.spans(text, is_config_path(path)):
                if kind in self.kinds:
                    pieces += [text[pos:start], SECRET_PLACEHOLDER]
                    pos = end
                    counts[f"secrets_{kind}"] += 1
            text = "".join(pieces) + text[pos:] if pieces else text
        return text, +counts

    def modify(self, doc: Document) -> list[tuple[str, float | None]]:
        doc.text, counts = self.redact(doc.text, doc.path)
        return [(reason, float(n)) for reason, n in counts.items()]


def _redact_connection_passwords(text: str, pattern: re.Pattern[str]) -> tuple[str, int]:
    """Replace the password of `scheme://user:password@host` unless it is a placeholder ("pass", "${PW}")."""
    count = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal count
        if is_placeholder(m.group(2)) or m.group(2) == SECRET_PLACEHOLDER:
            return m.group(0)
        count += 1
        return m.group(1) + SECRET_PLACEHOLDER

    return pattern.sub(repl, text), count
