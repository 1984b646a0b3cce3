"""alt-profanity-check's toxicity model read and run without scikit-learn (filters/toxicity.py uses it).

The package ships two joblib pickles: a `TfidfVectorizer` (word unigrams, lowercase, l2 norm, smooth idf) and a
`CalibratedClassifierCV` over `LinearSVC` members with sigmoid calibration. Unpickling them as sklearn objects
imports scikit-learn and scipy: ~1 s and ~85 MiB of RSS in every process that scores a document (each pool worker).
Here the pickles are read into plain attribute holders (only the classes they are known to hold are allowed) and
the inference is the same arithmetic in numpy:

    tfidf = l2_normalize(counts * idf_)                        (TfidfTransformer.transform, sublinear_tf off)
    p = mean over members m of expit(-(a_m * (tfidf . coef_m + intercept_m) + b_m))   (predict_proba[:, 1])

Stop words need no list: the vectorizer removed them when it built its vocabulary, so a stop word is never counted
either way. tests/filters/test_safety.py checks the scores against sklearn's `predict_proba`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# The classes the two pickles reference; anything else is refused (the files are sha256-checked assets anyway).
_SKLEARN_CLASSES = {
    ("sklearn.feature_extraction.text", "TfidfVectorizer"),
    ("sklearn.feature_extraction.text", "TfidfTransformer"),
    ("sklearn.calibration", "CalibratedClassifierCV"),
    ("sklearn.calibration", "_CalibratedClassifier"),
    ("sklearn.calibration", "_SigmoidCalibration"),
    ("sklearn.svm._classes", "LinearSVC"),
}


class _State:
    """An sklearn object's pickled attributes, without its class."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _read_pickle(path: Path) -> Any:
    """A joblib pickle with the sklearn classes above read as `_State` holders (no sklearn import)."""
    # NOTE: joblib has no public hook for find_class; these two names are joblib 1.x's own load path.
    from joblib.numpy_pickle import NumpyUnpickler, _validate_fileobject_and_memmap

    class Unpickler(NumpyUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in _SKLEARN_CLASSES:
                return type(name, (_State,), {})
            if module.startswith("sklearn") or module.startswith("scipy"):
                raise ValueError(f"{path}: unexpected class {module}.{name} in the toxicity model's pickle")
            return super().find_class(module, name)

    with open(path, "rb") as f, _validate_fileobject_and_memmap(f, str(path), None) as (fobj, _):
        return Unpickler(str(path), fobj, True).load()


@dataclass(frozen=True)
class ToxicityModel:
    """TF-IDF (word unigrams) + a mean of sigmoid-calibrated linear models, as plain arrays.

    Shapes: V vocabulary terms, M calibrated members.
    """

    vocabulary: dict[str, int]
    token_pattern: re.Pattern[str]
    idf_V: np.ndarray
    coef_MV: np.ndarray
    intercept_M: np.ndarray
    sigmoid_a_M: np.ndarray
    sigmoid_b_M: np.ndarray

    def __post_init__(self) -> None:
        v, m = len(self.vocabulary), len(self.intercept_M)
        assert self.idf_V.shape == (v,) and self.coef_MV.shape == (m, v), (self.idf_V.shape, self.coef_MV.shape, v)
        assert self.sigmoid_a_M.shape == self.sigmoid_b_M.shape == (m,), (self.sigmoid_a_M.shape, m)

    @classmethod
    def from_pickles(cls, vectorizer_path: Path, model_path: Path) -> ToxicityModel:
        """The model of alt-profanity-check's `vectorizer.joblib` and `model.joblib`; ValueError when the
        pickles hold a configuration this arithmetic does not reproduce."""
        vec, model = _read_pickle(vectorizer_path), _read_pickle(model_path)
        tfidf = vec._tfidf
        expected = {"analyzer": "word", "ngram_range": (1, 1), "lowercase": True, "binary": False, "norm": "l2"}
        got = {k: getattr(vec, k, None) for k in expected} | {"norm": tfidf.norm}
        got |= {"use_idf": tfidf.use_idf, "sublinear_tf": tfidf.sublinear_tf, "method": model.method}
        got |= {"preprocessor": vec.preprocessor, "tokenizer": vec.tokenizer, "strip_accents": vec.strip_accents}
        expected |= {"use_idf": True, "sublinear_tf": False, "method": "sigmoid"}
        expected |= {"preprocessor": None, "tokenizer": None, "strip_accents": None}
        if got != expected or list(model.classes_) != [0, 1]:
            raise ValueError(f"{model_path}: a toxicity model configured as {got}, expected {expected}")
        members = model.calibrated_classifiers_
        if any(len(c.calibrators) != 1 for c in members):
            raise ValueError(f"{model_path}: expected one calibrator per member (a binary model)")
        return cls(
            vocabulary=vec.vocabulary_,
            token_pattern=re.compile(vec.token_pattern),
            idf_V=np.asarray(tfidf.idf_, dtype=np.float64),
            coef_MV=np.stack([c.estimator.coef_[0] for c in members]).astype(np.float64),
            intercept_M=np.array([c.estimator.intercept_[0] for c in members], dtype=np.float64),
            sigmoid_a_M=np.array([c.calibrators[0].a_ for c in members], dtype=np.float64),
            sigmoid_b_M=np.array([c.calibrators[0].b_ for c in members], dtype=np.float64),
        )

    def decision(self, text: str) -> np.ndarray:
        """Each member's linear decision value for `text` (shape M)."""
        counts = Counter(
            i for i in map(self.vocabulary.get, self.token_pattern.findall(text.lower())) if i is not None
        )
        if not counts:
            return self.intercept_M.copy()
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tfidf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts)) * self.idf_V[idx]
        tfidf /= np.sqrt(np.dot(tfidf, tfidf))
        return self.coef_MV[:, idx] @ tfidf + self.intercept_M

    def scores(self, texts: Sequence[str]) -> list[float]:
        """Probability that each text is offensive (sklearn's `predict_proba(...)[:, 1]`)."""
        out = []
        for text in texts:
            f_M = self.decision(text)
            out.append(float(np.mean(1.0 / (1.0 + np.exp(self.sigmoid_a_M * f_M + self.sigmoid_b_M)))))
        return out
