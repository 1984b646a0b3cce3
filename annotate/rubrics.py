"""Rubrics: versioned prompt templates (`annotate/rubrics/*.toml`) whose answer is a label for the document.

A rubric is a synth template (synth/templates.py: name, version, chat format, Jinja prompt with the document as
`seed`, sampling, a JSON schema that guided decoding enforces and that is checked again on the answer) whose
schema has a required `label` property: an integer range (an ordinal score such as `educational_value`'s 0-5) or
a string `enum` (a class such as `topic`'s). Other properties (a justification) are kept beside the label.

Shipped: `educational_value` (FineWeb-Edu's additive 0-5), `topic` and `format` (WebOrganizer's 24 + 24 domains),
`safety` (harm categories). A path to a `.toml` file is a rubric too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synth.templates import Template, TemplateError, load_template

RUBRICS_DIR = Path(__file__).with_name("rubrics")


def available_rubrics() -> list[str]:
    return sorted(p.stem for p in RUBRICS_DIR.glob("*.toml"))


def load_rubric(name: str) -> Template:
    """A shipped rubric by name, or a rubric file (a path ending in .toml), checked.

    Raises:
        TemplateError: unknown name, an unreadable template, or a schema without a `label` that names its values;
            the message names the file and what to fix.
    """
    path = Path(name) if name.endswith(".toml") else RUBRICS_DIR / f"{name}.toml"
    if not path.is_file():
        raise TemplateError(f"unknown rubric {name!r}; available: {available_rubrics()} (or a path to a .toml file)")
    rubric = load_template(path)
    if rubric.output_kind != "json":
        raise TemplateError(f'{path}: a rubric answers in JSON ([output] kind = "json" with a schema)')
    label = (rubric.schema.get("properties") or {}).get("label")
    if label is None or "label" not in rubric.schema.get("required", []):
        raise TemplateError(f"{path}: the output schema needs a required 'label' property")
    if label_values(rubric) is None:
        raise TemplateError(
            f"{path}: output.schema.properties.label needs an `enum` or an integer `minimum` and `maximum`"
        )
    return rubric


def label_values(rubric: Template) -> list[str] | None:
    """Every label the rubric allows, as the strings the `label` column holds (an integer range written out)."""
    label: dict[str, Any] = rubric.schema["properties"]["label"]
    if "enum" in label:
        return [str(v) for v in label["enum"]]
    if label.get("type") == "integer" and "minimum" in label and "maximum" in label:
        return [str(v) for v in range(int(label["minimum"]), int(label["maximum"]) + 1)]
    return None
