"""Whether a string is a secret's value, for the secret redactor (filters/secrets.py): Shannon entropy,
placeholders ("changeme", "<password>", "${DB_PASS}"), names that point at a secret instead of holding one
("DB_PASSWORD", "settings.SECRET"), and the shape of a password written in code.

Why a module of its own: the vendor-pattern validators and the credential-assignment finder both judge values
with these rules, and the rules are what a false redaction or a missed secret is tuned on.
"""

from __future__ import annotations

import math
import re
from collections import Counter


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


def is_placeholder(value: str) -> bool:
    """ "changeme", "<password>", "${DB_PASS}", "{{ token }}", "%(pw)s", "$PGPASSWORD", "xxxx", "****", "", ..."""
    low = value.lower()
    if len(set(low)) <= 1 or low in _PLACEHOLDER_WORDS or _TEMPLATE_RE.fullmatch(value):
        return True
    return any(h in low for h in _PLACEHOLDER_HINTS)


def looks_random(value: str, min_entropy: float = 3.0) -> bool:
    """High-entropy, mixed-class, not an obvious placeholder ("your-api-key", "xxxx", "${API_KEY}")."""
    if is_placeholder(value):
        return False
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value)))
    return classes >= 2 and shannon_entropy(value) >= min_entropy


def has_digit(s: str) -> bool:
    return any(c.isdigit() for c in s)


def random_suffix(s: str) -> bool:
    """The part after the prefix ("sk_live_...") holds a digit or mixes cases: a key, not a name such as
    "sk_test_placeholderkeyvalue". (Requiring a digit missed 1.5% of random 24-character keys.)"""
    tail = s.rsplit("_", 1)[-1]
    return has_digit(tail) or (tail.lower() != tail and tail.upper() != tail)


_NAME_LIKE_RE = re.compile(
    r"[A-Z][A-Z0-9_]*|[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+|[a-z][a-z0-9]*(?:[_.\-][a-z0-9]+)+"
)
_NAME_WORDS = frozenset(
    "pass password passwd pwd secret secrets token key keys api apikey auth cred creds credential credentials env "
    "user username field name id var setting settings config".split()
)
_PW_SYMBOLS = frozenset("!@#%^&*+=?~/|:;,.-_")


def is_name(value: str) -> bool:
    """An identifier that names a secret instead of holding it: "DB_PASSWORD", "settings.SECRET", "user-token",
    "$serde_json::private::Number" (a Rust or C++ path)."""
    if "::" in value:
        return True
    if not _NAME_LIKE_RE.fullmatch(value):
        return False
    return value.isupper() or "." in value or not _NAME_WORDS.isdisjoint(re.split(r"[_.\-]", value.lower()))


def password_value(value: str, quoted: bool, config: bool) -> bool:
    """Whether a value assigned to a password key is a password (not a placeholder, name or expression)."""
    if len(value) < 6 or any(c.isspace() for c in value) or is_placeholder(value) or is_name(value):
        return False
    if quoted or config:
        return True
    # Bare value in code or unknown text: `password = get_pw()` or `password: str` are code, so require a
    # password's shape (a digit or symbol besides letters) and nothing that reads as an expression.
    if any(c in "()[]{}<>\"'" for c in value) or value.endswith((";", ",")):
        return False
    if re.fullmatch(r"[A-Za-z_]\w*", value) and ("_" in value or not has_digit(value)):
        return False  # an identifier: `password = new_password`, `pwd = cwd`
    return has_digit(value) or any(c in _PW_SYMBOLS for c in value)
