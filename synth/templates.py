"""Versioned prompt templates (data files in `synth/templates/*.toml`), rendered into engine requests, and the
check of what comes back.

A template file holds: `name`, `version` (bump it when the prompt changes: it is part of every request key and
of the provenance), `format` (the output's chat format: "plain", "chatml" for Qwen, "harmony" for GPT-OSS),
`domains` (seed domains it fits; empty: any), sampling defaults (`max_tokens`, `temperature`, `top_p`),
`system`, `[variables]` (lists; one value of each is drawn per request, seeded), `[prompt] text` (Jinja, with
`seed` and the variables), and `[output]`: `kind = "text"` (with `min_chars`) or `kind = "json"` with a JSON
`schema` that the engine's guided decoding enforces and that is validated again here.
"""

from __future__ import annotations

import hashlib
import json
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth.seeds import Seed

TEMPLATES_DIR = Path(__file__).with_name("templates")
FORMATS = ("plain", "chatml", "harmony")
# How each format wraps (system, user) and where the answer ends. Harmony: GPT-OSS's message format, answer
# in the `final` channel, ended by <|return|> (or <|end|>). ChatML: Qwen's, ended by <|im_end|>.
_WRAP = {
    "plain": ("{system}\n\n{user}\n\n", []),
    "chatml": (
        "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n",
        ["<|im_end|>"],
    ),
    "harmony": (
        "<|start|>system<|message|>{system}<|end|><|start|>user<|message|>{user}<|end|>"
        "<|start|>assistant<|channel|>final<|message|>",
        ["<|return|>", "<|end|>"],
    ),
}


class TemplateError(ValueError):
    """A template file that cannot work; the message names the file and the key."""


@dataclass(frozen=True)
class Template:
    """One parsed template file (see the module docstring for the keys)."""

    name: str
    version: int
    format: str
    prompt: str
    system: str = ""
    description: str = ""
    domains: tuple[str, ...] = ()
    variables: dict[str, list[str]] = field(default_factory=dict)
    max_tokens: int = 512
    temperature: float = 0.8
    top_p: float = 0.95
    output_kind: str = "text"
    schema: dict[str, Any] | None = None
    min_chars: int = 1
    path: str = ""

    @property
    def ref(self) -> str:
        """ "name@version", as provenance records it."""
        return f"{self.name}@{self.version}"

    @property
    def sha256(self) -> str:
        """Hash of the template's content (prompt, format, schema, sampling), recorded beside its version."""
        blob = json.dumps(
            [
                self.name,
                self.version,
                self.format,
                self.prompt,
                self.system,
                self.variables,
                self.max_tokens,
                self.temperature,
                self.top_p,
                self.output_kind,
                self.schema,
                self.min_chars,
            ],
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def fits(self, seed: Seed) -> bool:
        return not self.domains or seed.domain in self.domains

    def render(self, seed: Seed, rng_key: str) -> tuple[str, dict[str, str]]:
        """The full prompt (wrapped in the template's format) and the variable values drawn for it.

        Args:
            seed: the seed document.
            rng_key: seeds the variable draw (the request key), so a rerun draws the same values.
        """
        rng = random.Random(rng_key)
        values = {k: rng.choice(v) for k, v in sorted(self.variables.items())}
        user = _jinja().from_string(self.prompt).render(seed=seed, **values).strip()
        wrap, _ = _WRAP[self.format]
        if self.format == "plain" and not self.system:
            return f"{user}\n\n", values
        return wrap.format(system=self.system, user=user), values

    @property
    def stop(self) -> list[str]:
        return list(_WRAP[self.format][1])

    def request_body(self, prompt: str, sampling_seed: int, overrides: dict[str, Any] | None = None) -> dict:
        """The /v1/completions body: sampling params, stop strings and, for JSON output, the schema to enforce."""
        body: dict[str, Any] = {
            "prompt": prompt,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": sampling_seed,
        }
        if self.stop:
            # The stop markers are special tokens: keep them in the detokenized text so that stop strings match.
            body["stop"] = self.stop
            body["skip_special_tokens"] = False
        if self.output_kind == "json":
            body["structured_outputs"] = {"json": self.schema}
        overrides = dict(overrides or {})
        if "stop" in overrides:  # a run's extra stop strings add to the format's end markers
            overrides["stop"] = [*body.get("stop", []), *overrides["stop"]]
        body.update(overrides)
        return body

    def check(self, text: str, finish_reason: str | None) -> tuple[str | None, Any]:
        """(reject reason or None, parsed JSON or None) for a generation.

        Reasons: "empty", "truncated" (finish_reason=length), "too_short", "unparsable", "schema_violation".
        """
        body = text.strip()
        if not body:
            return "empty", None
        if finish_reason == "length":
            return "truncated", None
        if self.output_kind == "text":
            return ("too_short", None) if len(body) < self.min_chars else (None, None)
        try:
            parsed = json.loads(body)
        except ValueError:
            return "unparsable", None
        import jsonschema

        try:
            jsonschema.validate(parsed, self.schema)
        except jsonschema.ValidationError:
            return "schema_violation", parsed
        return None, parsed


def _truncate_chars(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n].rstrip() + " …"


_ENV = None


def _jinja() -> Any:
    global _ENV
    if _ENV is None:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import SandboxedEnvironment

        # Sandboxed and strict: a template is data, and a misspelt variable is an error, not an empty string.
        _ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
        _ENV.filters["truncate_chars"] = _truncate_chars
    return _ENV


def load_template(path: Path | str) -> Template:
    """Parse and check one template file."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TemplateError(f"{p}: cannot read template: {exc}") from exc
    for key in ("name", "version", "format", "prompt"):
        if key not in raw:
            raise TemplateError(f"{p}: missing key {key!r}")
    if raw["format"] not in FORMATS:
        raise TemplateError(f"{p}: format must be one of {FORMATS}, got {raw['format']!r}")
    prompt = raw["prompt"]["text"] if isinstance(raw["prompt"], dict) else raw["prompt"]
    out = raw.get("output", {})
    kind = out.get("kind", "text")
    if kind not in ("text", "json"):
        raise TemplateError(f"{p}: output.kind must be 'text' or 'json', got {kind!r}")
    schema = out.get("schema")
    if kind == "json":
        if not isinstance(schema, dict):
            raise TemplateError(f"{p}: output.kind = 'json' needs an [output.schema] table (a JSON schema)")
        import jsonschema

        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise TemplateError(f"{p}: output.schema is not a valid JSON schema: {exc.message}") from exc
    variables = raw.get("variables", {})
    for k, v in variables.items():
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            raise TemplateError(f"{p}: variables.{k} must be a non-empty list of strings")
    from jinja2 import TemplateSyntaxError

    try:
        _jinja().parse(prompt)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{p}: prompt.text is not valid Jinja: {exc}") from exc
    t = Template(
        name=raw["name"],
        version=int(raw["version"]),
        format=raw["format"],
        prompt=prompt,
        system=raw.get("system", ""),
        description=raw.get("description", ""),
        domains=tuple(raw.get("domains", [])),
        variables=variables,
        max_tokens=int(raw.get("max_tokens", 512)),
        temperature=float(raw.get("temperature", 0.8)),
        top_p=float(raw.get("top_p", 0.95)),
        output_kind=kind,
        schema=schema,
        min_chars=int(out.get("min_chars", 1)),
        path=str(p),
    )
    if t.max_tokens < 1:
        raise TemplateError(f"{p}: max_tokens must be >= 1, got {t.max_tokens}")
    return t


def available_templates(directory: Path | str = TEMPLATES_DIR) -> list[str]:
    return sorted(p.stem for p in Path(directory).glob("*.toml"))


def load_templates(names: list[str] | None = None, directory: Path | str = TEMPLATES_DIR) -> list[Template]:
    """Templates by name (file stem), default all in `directory`; a path ending in .toml is loaded as is."""
    names = names or available_templates(directory)
    out = []
    for name in names:
        path = Path(name) if name.endswith(".toml") else Path(directory) / f"{name}.toml"
        if not path.is_file():
            raise TemplateError(f"unknown template {name!r}; available: {available_templates(directory)}")
        out.append(load_template(path))
    return out
