"""The repo's top-level `tokenizers/` folder must not shadow Hugging Face's `tokenizers` package."""

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
