"""The learned severity layer: how urgent a caller's words sound and which hazard they name, from a
small model trained on labelled text written outside the project (tests/crosswriter.py trains it,
`make train`; the artefact is data/severity.json.gz, committed: the box has no corpus).

The model is a TF-IDF of character n-grams (inside word boundaries, so "pété", "pètent" and a
misspelt "petté" share features) and of words and word pairs, then two logistic regressions: one
for the urgency (critical, urgent, normal, none) and one for the hazard of critical calls. It was
chosen by measurement across writers (README "Understanding"). The rules stay beside it
(urgency.py) for what they do well: explicit, editable triggers.

At run time only numpy is used: the artefact holds plain data (vocabularies, idf weights,
coefficients), not a pickle, so it loads on any scikit-learn version and reads the same on the box
as where it was trained. One reading costs about 0.4 ms. The two analyzers (`_analyzer`) are
scikit-learn's, restated: importing scikit-learn took 1.05 s of every start (issue 22, ready in 3 s)
for 20 lines of tokenising; tests/unit/test_crosswriter.py checks them against scikit-learn's own
on every text of the corpus.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np

from agent.dialogue.state import Hazard

ARTEFACT: Final = Path(__file__).parent / "data" / "severity.json.gz"
URGENCIES: Final = ("critical", "urgent", "normal", "none")
TEXT: Final = {"lowercase": True, "strip_accents": "unicode", "sublinear_tf": True}
VECTORIZERS: Final = (
    {**TEXT, "analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 2},
    {**TEXT, "analyzer": "word", "ngram_range": (1, 2), "min_df": 1},
)
"""Each l2-normalised, then concatenated. (The rules' verdicts as extra features were tried: the
model learned to lean on them, since the project's own calls share the rules' writer, and caught
fewer emergencies from outside writers: 80% at once instead of 91%.)"""
C_URGENCY: Final = 10.0
C_HAZARD: Final = 10.0
"""Inverse regularisation of the two regressions (chosen across writers: tests/crosswriter.py)."""


@dataclass(frozen=True)
class Reading:
    """What the model reads in one utterance."""

    p: dict[str, float]
    """Probability of each urgency (URGENCIES)."""
    hazard: Hazard
    """The most likely hazard, were the call critical."""
    in_scope: bool = True
    """False when every clause of the utterance spoke of something else than a danger here and now
    (scope.py): such a reading can make the receptionist ask, never decide."""

    @property
    def critical(self) -> float:
        return self.p["critical"]

    @property
    def needs_visit_soon(self) -> bool:
        """Urgent is more likely than normal and none."""
        return self.p["urgent"] >= max(self.p["normal"], self.p["none"])


class _Features:
    """One TF-IDF vectoriser's transform, from its vocabulary and idf (what scikit-learn computes)."""

    def __init__(self, params: dict[str, Any], vocabulary: Sequence[str], idf: Sequence[float]) -> None:
        self.analyze: Callable[[str], list[str]] = _analyzer(params)
        self.index = {term: i for i, term in enumerate(vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.idf)

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The text's non-zero features: (indices, values), l2-normalised."""
        counts = Counter(self.index[t] for t in self.analyze(text) if t in self.index)
        at = np.fromiter(counts, dtype=np.intp, count=len(counts))
        values = np.array([1.0 + math.log(n) for n in counts.values()]) * self.idf[at]
        norm = float(np.linalg.norm(values))
        return at, (values / norm if norm else values)


_WORD: Final = re.compile(r"(?u)\b\w\w+\b")
_SPACES: Final = re.compile(r"\s\s+")


def _analyzer(params: dict[str, Any]) -> Callable[[str], list[str]]:
    """scikit-learn's `TfidfVectorizer(**params).build_analyzer()` for the two VECTORIZERS (lowercase,
    unicode accents stripped, then char_wb or word n-grams with the default token pattern)."""
    if not (params.get("lowercase") and params.get("strip_accents") == "unicode"
            and params.get("analyzer") in ("char_wb", "word")):
        raise ValueError(f"unsupported vectorizer parameters: {params}")
    low, high = params["ngram_range"]

    def preprocess(text: str) -> str:
        text = text.lower()
        if not text.isascii():
            text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
        return text

    def char_wb(text: str) -> list[str]:
        out = []
        for word in _SPACES.sub(" ", preprocess(text)).split():
            w = f" {word} "
            for n in range(low, high + 1):
                out += [w[i:i + n] for i in range(max(1, len(w) - n + 1))]
                if len(w) <= n:  # a short word counted once
                    break
        return out

    def words(text: str) -> list[str]:
        tokens = _WORD.findall(preprocess(text))
        return [" ".join(tokens[i:i + n]) for n in range(low, min(high, len(tokens)) + 1)
                for i in range(len(tokens) - n + 1)]

    return char_wb if params["analyzer"] == "char_wb" else words


def _vectorizer(params: dict[str, Any]) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})


class SeverityModel:
    def __init__(self, data: dict[str, Any]) -> None:
        self.features = [_Features(v["params"], v["vocabulary"], v["idf"]) for v in data["vectorizers"]]
        self.urgency_classes: list[str] = data["urgency"]["classes"]
        self.urgency_coef = np.asarray(data["urgency"]["coef"], dtype=np.float64)
        self.urgency_bias = np.asarray(data["urgency"]["intercept"], dtype=np.float64)
        self.hazard_classes = [Hazard(h) for h in data["hazard"]["classes"]]
        self.hazard_coef = np.asarray(data["hazard"]["coef"], dtype=np.float64)
        self.hazard_bias = np.asarray(data["hazard"]["intercept"], dtype=np.float64)
        self.trained_on: str = data.get("trained_on", "")

    def vector(self, text: str) -> np.ndarray:
        """The dense feature vector (as scikit-learn's transform gives it: tests compare them)."""
        out = np.zeros(sum(len(f) for f in self.features))
        at, values = self._sparse(text)
        out[at] = values
        return out

    def _sparse(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        parts, offset = [], 0
        for f in self.features:
            at, values = f.vector(text)
            parts.append((at + offset, values))
            offset += len(f)
        return np.concatenate([a for a, _ in parts]), np.concatenate([v for _, v in parts])

    def read(self, text: str) -> Reading:
        at, x = self._sparse(text)
        p = _softmax(self.urgency_coef[:, at] @ x + self.urgency_bias)
        h = _softmax(self.hazard_coef[:, at] @ x + self.hazard_bias)
        return Reading({c: float(p[i]) for i, c in enumerate(self.urgency_classes)},
                       self.hazard_classes[int(np.argmax(h))])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return np.asarray(e / e.sum())


@lru_cache(maxsize=1)
def default_model() -> SeverityModel:
    """The committed model (loaded once, shared by every call)."""
    with gzip.open(ARTEFACT, "rt", encoding="utf-8") as fh:
        return SeverityModel(json.load(fh))


# --- training (tests/crosswriter.py, `make train`) ---------------------------------------------------
def fit(texts: Sequence[str], urgencies: Sequence[str], hazards: Sequence[Hazard | None],
        trained_on: str = "") -> dict[str, Any]:
    """Train both regressions; returns the artefact as plain data (SeverityModel(fit(...)) reads it).
    `hazards` is None where the hazard is not known (non-critical texts, the project's own calls)."""
    from scipy.sparse import hstack
    from sklearn.linear_model import LogisticRegression

    vecs = [_vectorizer(p) for p in VECTORIZERS]
    X = hstack([v.fit_transform(texts) for v in vecs]).tocsr()
    urgency = LogisticRegression(C=C_URGENCY, max_iter=3000, class_weight="balanced").fit(X, list(urgencies))
    rows = [i for i, h in enumerate(hazards) if h is not None]
    hazard = LogisticRegression(C=C_HAZARD, max_iter=3000, class_weight="balanced").fit(
        X[rows], [str(hazards[i]) for i in rows])

    def regression(m: Any) -> dict[str, Any]:
        return {"classes": [str(c) for c in m.classes_], "coef": np.round(m.coef_, 5).tolist(),
                "intercept": np.round(m.intercept_, 5).tolist()}

    return {
        "trained_on": trained_on,
        "vectorizers": [{"params": p, "vocabulary": sorted(v.vocabulary_, key=v.vocabulary_.get),
                         "idf": np.round(v.idf_, 5).tolist()} for p, v in zip(VECTORIZERS, vecs, strict=True)],
        "urgency": regression(urgency),
        "hazard": regression(hazard),
    }


def save(data: dict[str, Any], path: Path = ARTEFACT) -> None:
    with gzip.GzipFile(path, "wb", mtime=0) as fh:
        fh.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
