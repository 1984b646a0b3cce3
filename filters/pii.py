"""PII and secret redaction: emails, phone numbers, public IP addresses, API keys, tokens and private keys.

Every pattern is linear in the text length: each one either starts at a position a lookbehind pins to the start
of a character run, or uses bounded quantifiers only, and no pattern nests an unbounded repetition inside
another. So a 50 MB single-line document costs a few regex scans, never exponential backtracking. A cheap
substring pre-check ("@", "+", "-----BEGIN", "AKIA", ...) skips a pattern when its anchor is absent.

Placeholders follow the Kind-<TAG> style of BigCode's StarCoder PII pipeline (Li et al. 2023, arXiv 2305.06161):
`<EMAIL>`, `<PHONE>`, `<IP_ADDRESS>`, `<SECRET>`.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

from filters.base import Modifier
from schemas import Document

EMAIL_PLACEHOLDER = "<EMAIL>"
PHONE_PLACEHOLDER = "<PHONE>"
IP_PLACEHOLDER = "<IP_ADDRESS>"
SECRET_PLACEHOLDER = "<SECRET>"

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


def _redact(
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
            text, n = _redact(text, _EMAIL_RE, EMAIL_PLACEHOLDER, _not_git_remote)
            counts["pii_email"] += n
        if "phone" in self.kinds:
            if "+" in text:
                text, n = _redact(text, _INTL_PHONE_RE, PHONE_PLACEHOLDER, _valid_intl_phone)
                counts["pii_phone"] += n
            text, n = _redact(text, _US_PHONE_RE, PHONE_PLACEHOLDER)
            counts["pii_phone"] += n
        if "ip" in self.kinds:
            if "." in text:
                text, n = _redact(text, _IPV4_RE, IP_PLACEHOLDER, _public_ipv4)
                counts["pii_ip"] += n
            if "::" in text or text.count(":") >= 7:
                text, n = _redact(text, _IPV6_RE, IP_PLACEHOLDER, _public_ipv6)
                counts["pii_ip"] += n
        return text, +counts

    def modify(self, doc: Document) -> list[tuple[str, float | None]]:
        doc.text, counts = self.redact(doc.text)
        return [(reason, float(n)) for reason, n in counts.items()]


# --- secrets ------------------------------------------------------------------------------------------------
def shannon_entropy(s: str) -> float:
    """Bits per character of `s` (0 for empty)."""
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


_PLACEHOLDER_HINTS = (
    "xxx",
    "your",
    "example",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "dummy",
    "redacted",
    "replace",
    "fixme",
    "todo",
    "<",
    "${",
    "{{",
    "{%",
    "%(",
    "****",
    "...",
)
# Values that stand for a secret in documentation and templates rather than being one.
_PLACEHOLDER_WORDS = frozenset(
    "password passwd pass pwd secret token apikey api_key key admin root test none null nil true false undefined "
    "string str required optional default env empty unset secret_key access_key private_key".split()
)


# Template and environment references: $DB_PASS, %(pw)s, %s, %DB_PASS%, {password}, {0}.
_TEMPLATE_RE = re.compile(r"\$[A-Z_][A-Z0-9_]*|%\(\w+\)[sd]|%[sd]|%\w+%|\{\w*\}")


def _is_placeholder(value: str) -> bool:
    """ "changeme", "<password>", "${DB_PASS}", "{{ token }}", "%(pw)s", "$PGPASSWORD", "xxxx", "****", "", ..."""
    low = value.lower()
    if len(set(low)) <= 1 or low in _PLACEHOLDER_WORDS or _TEMPLATE_RE.fullmatch(value):
        return True
    return any(h in low for h in _PLACEHOLDER_HINTS)


def _looks_random(value: str, min_entropy: float = 3.0) -> bool:
    """High-entropy, mixed-class, not an obvious placeholder ("your-api-key", "xxxx", "${API_KEY}")."""
    if _is_placeholder(value):
        return False
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value)))
    return classes >= 2 and shannon_entropy(value) >= min_entropy


def _has_digit(s: str) -> bool:
    return any(c.isdigit() for c in s)


def _random_suffix(s: str) -> bool:
    """The part after the prefix ("sk_live_...") holds a digit or mixes cases: a key, not a name such as
    "sk_test_placeholderkeyvalue". (Requiring a digit missed 1.5% of random 24-character keys.)"""
    tail = s.rsplit("_", 1)[-1]
    return _has_digit(tail) or (tail.lower() != tail and tail.upper() != tail)


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
        _has_digit,
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
        _random_suffix,
    ),
    (
        "openai_key",
        ("sk-",),
        # sk-<48 alnum> (legacy), sk-proj-/sk-svcacct-/sk-admin-<long>, sk-ant-... (Anthropic) share the shape.
        re.compile(r"(?<![A-Za-z0-9_\-])sk-(?:[a-z]{2,10}-)?[A-Za-z0-9_\-]{20,250}(?![A-Za-z0-9_\-])"),
        lambda s: _has_digit(s) and _looks_random(s.split("-", 1)[1], 3.5),
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
# Key words of a credential assignment. "password" kinds redact any non-placeholder value (people choose
# passwords, so they need not look random); "assignment" kinds (tokens, keys, secrets) only random-looking ones.
_PASSWORD_WORDS = frozenset({"password", "passwd", "passphrase", "pass", "pwd"})
_KEY_WORD_RE = re.compile(
    r"(?i)passw(?:or)?d|passphrase|pass|pwd|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key|auth(?:orization)?"
    r"|credentials?"
)
# Short key words must start a name part ("db_pass", "dbPass", "pass"), so that "bypass" or "oauth" are no keys.
_SHORT_KEY_WORDS = frozenset({"pass", "pwd", "auth"})
# What may follow the key word inside the name (`secret_key`, `token_value`, `password2`), then the rest of the
# assignment: `[]` of a C array, closing quote of a JSON / dict key, a type annotation (`token: str = ...`), the operator
# (= : := => ??= ||=, never == or ::) and a quoted or bare value. Every run is bounded: linear per key word.
_ASSIGN_TAIL_RE = re.compile(
    r"""(?ix)
    (?:[_\-]?(?:key|value|str|string))?\d{0,2}
    (?![\w$.\-])
    (?:\[\d{0,4}\])?["']?[ \t]{0,5}
    (?::[ \t]{0,3}[&A-Za-z_][\w\[\]., |&'<>]{0,40}?[ \t]{0,3}(?==))?
    (?P<op>:=|=>|\?\?=|\|\|=|=(?![=~])|:(?![:=]))
    [ \t]{0,5}
    (?:(?P<q>["'`])(?P<qv>[^"'`\r\n\\]{0,256})(?P=q)|(?P<uv>[^\s"'`]{1,256}))
    """
)
_LINE_REST_RE = re.compile(r"[ \t]*(?:[#;].{0,1000})?(?:\r?\n|$)")
_LINE_START_RE = re.compile(r"[ \t]*(?:export[ \t]+|-[ \t]+)?$")
_AUTH_SCHEME_RE = re.compile(r"(?i)(?:bearer|basic|token)\s+")
_NAME_LIKE_RE = re.compile(
    r"[A-Z][A-Z0-9_]*|[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+|[a-z][a-z0-9]*(?:[_.\-][a-z0-9]+)+"
)
_NAME_WORDS = frozenset(
    "pass password passwd pwd secret secrets token key keys api apikey auth cred creds credential credentials env "
    "user username field name id var setting settings config".split()
)
_PW_SYMBOLS = frozenset("!@#%^&*+=?~/|:;,.-_")
# File types whose unquoted `key = value` / `key: value` lines are values, not code.
CONFIG_SUFFIXES = (".env", ".ini", ".cfg", ".conf", ".properties", ".yaml", ".yml", ".toml")


def _is_config_path(path: str | None) -> bool:
    if not path:
        return False
    name = path.rsplit("/", 1)[-1].lower()
    return name.startswith(".env") or name.endswith(CONFIG_SUFFIXES)


def _is_name(value: str) -> bool:
    """An identifier that names a secret instead of holding it: "DB_PASSWORD", "settings.SECRET", "user-token",
    "$serde_json::private::Number" (a Rust or C++ path)."""
    if "::" in value:
        return True
    if not _NAME_LIKE_RE.fullmatch(value):
        return False
    return value.isupper() or "." in value or not _NAME_WORDS.isdisjoint(re.split(r"[_.\-]", value.lower()))


def _password_value(value: str, quoted: bool, config: bool) -> bool:
    """Whether a value assigned to a password key is a password (not a placeholder, name or expression)."""
    if len(value) < 6 or any(c.isspace() for c in value) or _is_placeholder(value) or _is_name(value):
        return False
    if quoted or config:
        return True
    # Bare value in code or unknown text: `password = get_pw()` or `password: str` are code, so require a
    # password's shape (a digit or symbol besides letters) and nothing that reads as an expression.
    if any(c in "()[]{}<>\"'" for c in value) or value.endswith((";", ",")):
        return False
    if re.fullmatch(r"[A-Za-z_]\w*", value) and ("_" in value or not _has_digit(value)):
        return False  # an identifier: `password = new_password`, `pwd = cwd`
    return _has_digit(value) or any(c in _PW_SYMBOLS for c in value)


class _Assignments:
    """Finds credential assignments: quoted values anywhere, bare values on their own config-style line."""

    def __init__(self, min_entropy: float) -> None:
        self.min_entropy = min_entropy

    def spans(self, text: str, config: bool) -> list[tuple[int, int, str]]:
        """(start, end, kind) of each value to replace, in text order, kind "password" or "assignment"."""
        out: list[tuple[int, int, str]] = []
        last_end = 0
        for m in _KEY_WORD_RE.finditer(text):
            s, e = m.span()
            if s < last_end:
                continue
            word = m.group(0).lower()
            prev = text[s - 1] if s else ""
            if word in _SHORT_KEY_WORDS and prev and (prev.isalnum() and not (prev.islower() and text[s].isupper())):
                continue
            tail = _ASSIGN_TAIL_RE.match(text, e)
            if tail is None:
                continue
            kind = "password" if word.startswith(("passw", "passp")) or word in _PASSWORD_WORDS else "assignment"
            if tail.group("q"):
                value, vs = tail.group("qv"), tail.start("qv")
            else:
                value, vs = tail.group("uv"), tail.start("uv")
                # A bare value counts only on its own line: `KEY=value`, `key: value`, `key = value  # note`.
                key_start = s
                while key_start > 0 and (text[key_start - 1].isalnum() or text[key_start - 1] in "_-.$"):
                    key_start -= 1
                line_start = text.rfind("\n", 0, key_start) + 1
                if not _LINE_START_RE.match(text, line_start, key_start) or not _LINE_REST_RE.match(text, tail.end()):
                    continue
                if tail.group("op") not in ("=", ":"):
                    continue
            if kind == "assignment":
                scheme = _AUTH_SCHEME_RE.match(value)
                if scheme:
                    value, vs = value[scheme.end() :], vs + scheme.end()
                ok = len(value) >= 16 and " " not in value and not _is_name(value)
                # A bare value with brackets is code (`auth = base64.decodebytes(auth)` in CPython's http.server):
                # tokens and keys are base64, hex or URL-safe and never hold one.
                ok = ok and not (not tail.group("q") and any(c in "()[]{}<>" for c in value))
                ok = ok and _looks_random(value, self.min_entropy)
            else:
                ok = _password_value(value, bool(tail.group("q")), config)
            if ok and value != SECRET_PLACEHOLDER:
                out.append((vs, vs + len(value), kind))
                last_end = tail.end()
        return out


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
        self._assignments = _Assignments(min_entropy)

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
                text, n = _redact(text, pattern, SECRET_PLACEHOLDER, accept)
            counts[f"secrets_{kind}"] += n
        if ("password" in self.kinds or "assignment" in self.kinds) and _ASSIGN_HINT.search(text):
            pieces, pos = [], 0
            for start, end, kind in self._assignments.spans(text, _is_config_path(path)):
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
        if _is_placeholder(m.group(2)) or m.group(2) == SECRET_PLACEHOLDER:
            return m.group(0)
        count += 1
        return m.group(1) + SECRET_PLACEHOLDER

    return pattern.sub(repl, text), count
