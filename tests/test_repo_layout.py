"""Repository layout and habits: the top-level `tokenizers/` folder must not shadow Hugging Face's `tokenizers`
package, and the tree keeps one formatter policy."""

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_tokenizers_dir_is_not_a_package():
    assert (REPO_ROOT / "tokenizers").is_dir()
    assert not (REPO_ROOT / "tokenizers" / "__init__.py").exists()


def test_transformers_imports_hf_tokenizers_from_repo_root():
    # A fresh interpreter whose cwd (first on sys.path with -c) is the repo root, as `python -m flows...` is.
    code = (
        "import tokenizers, transformers, os;"
        "from transformers import PreTrainedTokenizerFast;"
        "assert hasattr(tokenizers, 'Tokenizer'), tokenizers;"
        "print(os.path.dirname(tokenizers.__file__))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "site-packages" in out.stdout, out.stdout


def test_the_tree_is_ruff_formatted_and_lint_clean():
    """One formatter policy (issue 18): `ruff format --check` and `ruff check` pass over every tracked file."""
    ruff = [sys.executable, "-m", "ruff"]
    for args in (["format", "--check", "."], ["check", "."]):
        out = subprocess.run([*ruff, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"ruff {' '.join(args)}:\n{out.stdout[-3000:]}{out.stderr[-1000:]}"


# Folders that hold product code: every top-level package but the tests and the benchmarks, which stand above
# everything and may import anything.
PRODUCT_FLOORS = tuple(
    sorted(
        p.name for p in REPO_ROOT.iterdir() if (p / "__init__.py").is_file() and p.name not in ("tests", "benchmarks")
    )
)


def folder_imports(root=REPO_ROOT) -> dict[str, dict[str, set[str]]]:
    """{folder: {imported folder: {"file -> module", ...}}} from every product module's absolute imports, lazy
    (inside a function) ones included: an import in a function body is still a dependency."""
    import ast

    graph: dict[str, dict[str, set[str]]] = {f: {} for f in PRODUCT_FLOORS}
    for folder in PRODUCT_FLOORS:
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in graph and top != folder:
                        graph[folder].setdefault(top, set()).add(f"{path.relative_to(root)} -> {module}")
    return graph


def test_the_folder_import_graph_has_no_cycle():
    """Issue 18: one floor per folder. A folder imports only folders below it; a cycle between folders names the
    imports that close it."""
    graph = folder_imports()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return start == goal or any(
            nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen)) for nxt in graph[start]
        )

    cycles = [
        f"{a} -> {b} ({sorted(why)[0]}) and {b} reaches {a} back"
        for a in PRODUCT_FLOORS
        for b, why in graph[a].items()
        if reaches(b, a, set())
    ]
    assert not cycles, "\n".join(cycles)


def test_the_contract_floor_imports_no_step_package():
    """`pipeline/` is the contract every step stands on; `core/` and `schemas/` stand under it."""
    graph = folder_imports()
    assert set(graph["schemas"]) == set(), graph["schemas"]
    assert set(graph["core"]) <= {"schemas"}, graph["core"]
    assert set(graph["pipeline"]) <= {"core", "schemas"}, graph["pipeline"]


MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
# trainer/model.py reads best whole, top to bottom (nanoGPT's model file is one file too).
LONG_MODULES_ALLOWED = {"trainer/model.py"}


def test_modules_and_functions_stay_small():
    """Issue 18: no module over 450 lines (bar the model file) and no function over 80, in the product and the
    benchmarks: a longer one is split along its responsibilities."""
    import ast

    too_long = []
    for folder in (*PRODUCT_FLOORS, "benchmarks"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            rel = str(path.relative_to(REPO_ROOT))
            text = path.read_text(encoding="utf-8")
            if len(text.splitlines()) > MAX_MODULE_LINES and rel not in LONG_MODULES_ALLOWED:
                too_long.append(f"{rel}: {len(text.splitlines())} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        too_long.append(f"{rel}:{node.lineno} {node.name}: {lines} lines")
    assert not too_long, "\n".join(too_long)
