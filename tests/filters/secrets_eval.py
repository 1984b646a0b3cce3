"""A labelled set for `SecretRedactor`: credentials, placeholders and look-alikes planted into real files.

Each case is one real host file (source code from the shared `code_permissive` corpus; YAML, JSON and INI
files shipped inside installed dependencies; `.env` files built from the keys of those YAML files) with exactly
one planted line, written in the host's own syntax, at a line boundary chosen by a seeded RNG:

- `secret`: 12 kinds of credential (cloud keys, tokens, JWTs, private keys, connection strings, passwords
  and random-looking keys assigned in code, YAML, JSON, `.env` and INI). The case is caught when the planted
  value is gone from the redacted text.
- `lookalike`: hashes, UUIDs, commit ids, digests, public keys (random-looking, not secret). Must be kept.
- `placeholder`: "changeme", "<password>", "${DB_PASS}", "xxx", "", environment lookups. Must be kept.

Values are generated at run time, so no secret-shaped literal sits in the repository. Deterministic for a
seed and a set of host files. `benchmarks/bench_secrets.py` prints the table; tests/filters/test_pii.py
asserts recall >= 0.99 and no look-alike or placeholder redaction.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import random
import string
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from filters.secrets import SecretRedactor

ALNUM = string.ascii_letters + string.digits
WORDS = (
    "summer",
    "winter",
    "dragon",
    "falcon",
    "orange",
    "monkey",
    "river",
    "castle",
    "purple",
    "rocket",
    "silver",
    "tiger",
    "coffee",
    "banana",
    "garden",
    "marble",
    "canyon",
    "violet",
)
# Packages (core dependencies) whose shipped config files host the YAML / JSON / INI cases.
CONFIG_HOST_PACKAGES = ("prefect", "spacy")
HOST_MAX_LINES = 120


@dataclass(frozen=True)
class Case:
    """One host document with one planted line.

    Args:
        id: "<label>/<kind>/<format>/<n>".
        label: "secret", "lookalike" or "placeholder".
        kind: what was planted ("password", "aws_access_key", "uuid", ...).
        fmt: host format ("code", "yaml", "json", "env", "ini").
        path: the host's path (its suffix tells the redactor the format).
        text: the host text with the planted line.
        value: the planted string: must vanish (secret) or stay (lookalike, placeholder).
    """

    id: str
    label: str
    kind: str
    fmt: str
    path: str
    text: str
    value: str


# --------------------------------------------------------------------------------------------- values


def _s(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def human_password(rng: random.Random) -> str:
    """A password as people pick them: word + year + symbol, word + digits, passphrase, or random."""
    w = rng.choice(WORDS)
    style = rng.randrange(5)
    if style == 0:
        return w.capitalize() + str(rng.randrange(1990, 2030)) + rng.choice("!#$%&*?")
    if style == 1:
        return w + str(rng.randrange(10, 9999))
    if style == 2:
        return "-".join(rng.sample(WORDS, 4))
    if style == 3:
        return _s(rng, ALNUM + "!#%&*+-=?@^_", rng.randrange(10, 20))
    return w[0].upper() + w[1:].replace("a", "@").replace("o", "0").replace("e", "3") + str(rng.randrange(10, 99))


def _jwt(rng: random.Random) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps({"sub": str(rng.randrange(10**9)), "iat": rng.randrange(10**9, 2 * 10**9)}).encode())
    return f"{header}.{payload}.{_s(rng, ALNUM + '-_', 43)}"


def _pem(rng: random.Random) -> str:
    body = base64.b64encode(rng.randbytes(300)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----"


# kind -> value maker, for the 12 credential kinds (password and api_key are assignments, planted per format).
SECRET_VALUES: dict[str, Callable[[random.Random], str]] = {
    "aws_access_key": lambda r: "AKIA" + _s(r, string.ascii_uppercase + string.digits, 16),
    "aws_secret_key": lambda r: _s(r, ALNUM + "/+", 40),
    "github_token": lambda r: "ghp_" + _s(r, ALNUM, 36),
    "slack_token": lambda r: f"xoxb-{r.randrange(10**11, 10**12)}-{r.randrange(10**11, 10**12)}-{_s(r, ALNUM, 24)}",
    "google_api_key": lambda r: "AIza" + _s(r, ALNUM + "-_", 35),
    "stripe_key": lambda r: "sk_live_" + _s(r, ALNUM, 24),
    "openai_key": lambda r: "sk-proj-" + _s(r, ALNUM, 48),
    "jwt": _jwt,
    "private_key": _pem,
    # The password part of scheme://user:password@host, percent-encoded as RFC 3986 requires ("@" -> "%40").
    "connection_string": lambda r: quote(human_password(r), safe="!$&*+=-_"),
    "password": human_password,
    "api_key": lambda r: r.choice(
        [_s(r, "0123456789abcdef", 32), _s(r, ALNUM, 40), str(uuid.UUID(int=r.getrandbits(128)))]
    ),
}

LOOKALIKE_VALUES: dict[str, Callable[[random.Random], str]] = {
    "md5": lambda r: hashlib.md5(r.randbytes(16)).hexdigest(),
    "sha1_commit": lambda r: hashlib.sha1(r.randbytes(16)).hexdigest(),
    "sha256": lambda r: hashlib.sha256(r.randbytes(16)).hexdigest(),
    "sha512_integrity": lambda r: "sha512-" + base64.b64encode(hashlib.sha512(r.randbytes(16)).digest()).decode(),
    "uuid": lambda r: str(uuid.UUID(int=r.getrandbits(128))),
    "docker_digest": lambda r: "sha256:" + hashlib.sha256(r.randbytes(16)).hexdigest(),
    "ssh_public_key": lambda r: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + _s(r, ALNUM + "+/", 43),
    "password_hash": lambda r: "pbkdf2_sha256$600000$" + _s(r, ALNUM, 22) + "$" + _s(r, ALNUM + "+/", 43) + "=",
    "base64_blob": lambda r: base64.b64encode(r.randbytes(30)).decode(),
}

# --------------------------------------------------------------------------------------------- lines


def _camel(name: str) -> str:
    head, *rest = name.lower().split("_")
    return head + "".join(p.capitalize() for p in rest)


def code_assignment(ext: str, name: str, value: str) -> str:
    """`name = "value"` in the syntax of a source file with suffix `ext`."""
    if ext in ("js", "ts"):
        return f'const {_camel(name)} = "{value}";'
    if ext == "go":
        return f'{_camel(name)} := "{value}"'
    if ext == "java":
        return f'private static final String {name.upper()} = "{value}";'
    if ext == "rb":
        return f"{name.lower()} = '{value}'"
    if ext == "rs":
        return f'const {name.upper()}: &str = "{value}";'
    if ext in ("c", "h", "cc"):
        return f'static const char *{name.lower()} = "{value}";'
    return f'{name.upper()} = "{value}"'


def config_assignment(fmt: str, name: str, value: str, rng: random.Random) -> str:
    """`name: value` as a YAML, JSON, `.env` or INI line (bare or quoted, as people write them)."""
    if fmt == "yaml":
        return f"{name.lower()}: {value}" if rng.random() < 0.6 else f'{name.lower()}: "{value}"'
    if fmt == "json":
        return f'  "{_camel(name)}": "{value}",'
    if fmt == "env":
        return f"{name.upper()}={value}" if rng.random() < 0.7 else f'export {name.upper()}="{value}"'
    return f"{name.lower()} = {value}"  # ini


PASSWORD_NAMES = ("DB_PASSWORD", "password", "SMTP_PASS", "admin_pwd", "redis_passwd", "mail_password")
API_KEY_NAMES = ("api_key", "SECRET_KEY", "auth_token", "client_secret", "ACCESS_TOKEN", "private_key")
# Fixed-syntax lines: "{v}" is the value. Used in code hosts (and config hosts where they fit).
SECRET_LINES: dict[str, tuple[str, ...]] = {
    "aws_access_key": ("aws_access_key_id = {v}", 'AWS_ACCESS_KEY_ID = "{v}"', "# key: {v}"),
    "aws_secret_key": ('AWS_SECRET_ACCESS_KEY = "{v}"', "aws_secret_access_key: '{v}'"),
    "github_token": ('GITHUB_TOKEN = "{v}"', "// token {v}", "git clone https://{v}@github.com/org/repo.git"),
    "slack_token": ('slack = Client("{v}")', "SLACK_BOT={v}"),
    "google_api_key": ('MAPS_KEY = "{v}"', "url = f'https://maps.example/api?key={v}'"),
    "stripe_key": ('stripe.api_key = "{v}"', "STRIPE={v}"),
    "openai_key": ('client = OpenAI(api_key="{v}")', "OPENAI_API_KEY={v}"),
    "jwt": ('headers = {{"Authorization": "Bearer {v}"}}', "# curl -H 'Authorization: Bearer {v}'"),
    "private_key": ('KEY = """\n{v}\n"""', "/*\n{v}\n*/"),
    "connection_string": (
        'DATABASE_URL = "postgresql://app:{v}@db.internal:5432/app"',
        "MONGO = 'mongodb+srv://svc:{v}@cluster0.example.net/test'",
        "REDIS_URL=redis://default:{v}@cache:6379/0",
    ),
}
LOOKALIKE_LINES: dict[str, tuple[str, ...]] = {
    "md5": ('checksum = "{v}"', "# md5 {v}"),
    "sha1_commit": ('COMMIT = "{v}"', "// fixed in {v}", "revision: {v}"),
    "sha256": ('sha256 = "{v}"', 'token_hash = "{v}"'),
    "sha512_integrity": ('"integrity": "{v}",',),
    "uuid": ('request_id = "{v}"', "node_uuid: {v}", "ID={v}"),
    "docker_digest": ("image: python@{v}",),
    "ssh_public_key": ('public_key = "{v} deploy@ci"',),
    "password_hash": ('password_hash = "{v}"',),
    "base64_blob": ('ICON_PNG = "{v}"',),
}
# Placeholders: the whole planted line; `value` is the line itself (it must stay verbatim).
PLACEHOLDER_LINES = (
    'password = "changeme"',
    'DB_PASSWORD = "<password>"',
    "DB_PASS=${DB_PASS}",
    'api_key = "xxx"',
    'password = ""',
    'token: "{{ vault_token }}"',
    'PASSWORD = "********"',
    'SECRET_KEY = "your-secret-key-here"',
    'password = os.environ["DB_PASSWORD"]',
    "password: $DB_PASSWORD",
    "db_password = settings.DB_PASSWORD",
    'password = "%(db_password)s"',
    "API_KEY=<your-api-key>",
    "password = None",
    'password = "REPLACE_ME"',
    'token = "TODO"',
    "password: password",
    'password = "password"',
    "if password == user.password:",
    "password = getpass.getpass()",
    'auth_token = "abcdefghijklmnopqrstuvwx"',
)

# --------------------------------------------------------------------------------------------- hosts


def code_hosts(rows: Iterable[dict]) -> list[tuple[str, str, str]]:
    """(format, path, text) for source files (`code_permissive` rows: repo, path, content)."""
    out = []
    for r in rows:
        text = "\n".join(r["content"].splitlines()[:HOST_MAX_LINES])
        if text.strip():
            out.append(("code", f"{r['repo']}/{r['path']}", text))
    return out


def config_hosts(packages: Iterable[str] = CONFIG_HOST_PACKAGES) -> list[tuple[str, str, str]]:
    """(format, path, text) for YAML, JSON and INI files shipped by installed packages, and `.env` files
    built from those YAML files' top-level keys (no package ships a `.env`)."""
    suffixes = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".ini": "ini", ".cfg": "ini"}
    out: list[tuple[str, str, str]] = []
    for pkg in packages:
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*")):
            fmt = suffixes.get(path.suffix)
            if fmt is None or not path.is_file() or path.stat().st_size > 200_000:
                continue
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[:HOST_MAX_LINES]
            if len(lines) < 5:
                continue
            rel = f"{pkg}/{path.relative_to(root)}"
            out.append((fmt, rel, "\n".join(lines)))
            if fmt == "yaml":
                keys = [ln.split(":", 1) for ln in lines if ln[:1].isalpha() and ":" in ln]
                env = [f"{k.strip().upper().replace('-', '_')}={v.strip() or 'true'}" for k, v in keys]
                if len(env) >= 3:
                    out.append(("env", rel.rsplit("/", 1)[0] + "/.env", "\n".join(env)))
    return out


def _plant(rng: random.Random, text: str, line: str, fmt: str) -> str:
    """Insert `line` before a top-level line (or at the end); JSON gets it after the opening brace."""
    lines = text.split("\n")
    if fmt == "json":
        at = next((i + 1 for i, ln in enumerate(lines) if ln.strip().endswith("{")), len(lines))
    else:
        tops = [i for i, ln in enumerate(lines) if ln and not ln[0].isspace()] or [len(lines)]
        at = rng.choice(tops)
    return "\n".join(lines[:at] + line.split("\n") + lines[at:])


# --------------------------------------------------------------------------------------------- the set


def build_cases(hosts: list[tuple[str, str, str]], per_kind: int = 20, seed: int = 0) -> list[Case]:
    """The labelled set: `per_kind` cases for each secret kind and format, look-alike kind and placeholder.

    Args:
        hosts: (format, path, text) from `code_hosts` and `config_hosts`.
        per_kind: cases per (kind, format).
        seed: RNG seed (values, hosts, positions).
    """
    rng = random.Random(seed)
    by_fmt: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for h in hosts:
        by_fmt[h[0]].append(h)
    if not by_fmt.get("code"):
        raise ValueError("build_cases needs at least one code host")
    cases: list[Case] = []

    def add(label: str, kind: str, fmt: str, line: str, value: str) -> None:
        _, path, text = rng.choice(by_fmt[fmt])
        n = sum(c.label == label and c.kind == kind and c.fmt == fmt for c in cases)
        cases.append(Case(f"{label}/{kind}/{fmt}/{n}", label, kind, fmt, path, _plant(rng, text, line, fmt), value))

    for kind, templates in SECRET_LINES.items():
        for i in range(per_kind):
            v = SECRET_VALUES[kind](rng)
            add("secret", kind, "code", templates[i % len(templates)].format(v=v), v)
    for kind, names in (("password", PASSWORD_NAMES), ("api_key", API_KEY_NAMES)):
        for fmt in ("code", "yaml", "json", "env", "ini"):
            if not by_fmt.get(fmt):
                continue
            for i in range(per_kind):
                v, name = SECRET_VALUES[kind](rng), names[i % len(names)]
                if fmt == "code":
                    _, path, _ = rng.choice(by_fmt["code"])
                    line = code_assignment(path.rsplit(".", 1)[-1], name, v)
                else:
                    line = config_assignment(fmt, name, v, rng)
                add("secret", kind, fmt, line, v)
    for kind, templates in LOOKALIKE_LINES.items():
        for i in range(per_kind):
            v = LOOKALIKE_VALUES[kind](rng)
            add("lookalike", kind, "code", templates[i % len(templates)].format(v=v), v)
    for i in range(per_kind * 2):
        line = PLACEHOLDER_LINES[i % len(PLACEHOLDER_LINES)]
        add("placeholder", "placeholder", "code", line, line)
    return cases


@dataclass
class Score:
    """Counts per (label, kind): cases, and how many had their planted value redacted."""

    total: Counter[tuple[str, str]]
    redacted: Counter[tuple[str, str]]
    missed: list[Case]
    false_redactions: list[Case]

    def recall(self) -> float:
        pos = sum(n for (lab, _), n in self.total.items() if lab == "secret")
        return sum(n for (lab, _), n in self.redacted.items() if lab == "secret") / max(pos, 1)


def score(cases: list[Case], redactor: SecretRedactor | None = None, use_path: bool = True) -> Score:
    """Run `redactor` on every case; a secret counts as caught when its value no longer occurs in the text.

    Args:
        cases: from `build_cases`.
        redactor: default `SecretRedactor()`.
        use_path: pass the host's path (its suffix marks `.env` / INI / YAML files), as the chain does.
    """
    redactor = redactor or SecretRedactor()
    total: Counter[tuple[str, str]] = Counter()
    redacted: Counter[tuple[str, str]] = Counter()
    missed, false = [], []
    for c in cases:
        out, _ = redactor.redact(c.text, c.path if use_path else None)
        gone = out.count(c.value) < c.text.count(c.value)
        total[(c.label, c.kind)] += 1
        redacted[(c.label, c.kind)] += gone
        if c.label == "secret" and not gone:
            missed.append(c)
        elif c.label != "secret" and gone:
            false.append(c)
    return Score(total, redacted, missed, false)
