"""Credential assignments for the secret redactor (filters/secrets.py): `DB_PASSWORD = "..."`, `"api_key": "..."`,
`password: ...`, `SECRET=...` in code, YAML, JSON, `.env` and INI; the key name is kept, the value's span is found.

Quoted values count anywhere; bare values only on their own line, and in code (not a config file) only with a
password's shape. Every regex run is bounded, so the scan is linear per key word.
"""

from __future__ import annotations

import re

from filters.pii import SECRET_PLACEHOLDER
from filters.secret_values import is_name, looks_random, password_value

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
# File types whose unquoted `key = value` / `key: value` lines are values, not code.
CONFIG_SUFFIXES = (".env", ".ini", ".cfg", ".conf", ".properties", ".yaml", ".yml", ".toml")


def is_config_path(path: str | None) -> bool:
    """Whether `path` names a config file (`.env*`, INI, YAML, TOML, ...), where bare `key = value` lines are values."""
    if not path:
        return False
    name = path.rsplit("/", 1)[-1].lower()
    return name.startswith(".env") or name.endswith(CONFIG_SUFFIXES)


class Assignments:
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
                ok = len(value) >= 16 and " " not in value and not is_name(value)
                # A bare value with brackets is code (`auth = base64.decodebytes(auth)` in CPython's http.server):
                # tokens and keys are base64, hex or URL-safe and never hold one.
                ok = ok and not (not tail.group("q") and any(c in "()[]{}<>" for c in value))
                ok = ok and looks_random(value, self.min_entropy)
            else:
                ok = password_value(value, bool(tail.group("q")), config)
            if ok and value != SECRET_PLACEHOLDER:
                out.append((vs, vs + len(value), kind))
                last_end = tail.end()
        return out
