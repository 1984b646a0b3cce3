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
