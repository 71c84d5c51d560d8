"""Golden values for tunelab's classification metrics, produced by scikit-learn.

Run with `make reference-venv && .venv-ref/bin/python scripts/reference/metrics_fixtures.py`
(scikit-learn and numpy only; any venv with `pip install scikit-learn numpy` will do).
Writes tests/fixtures/classification_metrics.json, which tests/metrics_golden.rs reads.

Each case holds the class names, the predicted and true class indices, the class
probabilities (binary cases) and what scikit-learn computes from them, over the classes
`range(len(names))`:

- accuracy (accuracy_score) and macro_f1 (f1_score(average="macro"));
- precision, recall, f1 and support per class (precision_recall_fscore_support), with the
  default zero_division="warn", which yields 0.0;
- confusion, the confusion matrix [true][predicted] (confusion_matrix);
- roc_auc of the second class's probability (roc_auc_score), binary cases only; null where
  the truth holds one class and scikit-learn returns NaN.

The cases: binary with many tied scores, binary with every score tied, binary with one class
in the truth, 3 classes with a class never predicted, 4 classes with one absent from the
truth (and from the predictions), a perfect prediction, and a random 5-class case.
"""

import json
import math
import pathlib
import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def case(name, names, truth, predicted, probabilities=None):
    labels = list(range(len(names)))
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels)
    out = {
        "name": name,
        "names": names,
        "predicted": predicted.tolist(),
        "truth": truth.tolist(),
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, labels=labels, average="macro")),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.tolist(),
        "confusion": confusion_matrix(truth, predicted, labels=labels).tolist(),
    }
    if probabilities is not None:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        auc = float(roc_auc_score(truth, probabilities[:, 1]))
        out["probabilities"] = probabilities.tolist()
        out["roc_auc"] = None if math.isnan(auc) else auc
    return out


def binary_from_scores(scores):
    """Two-class probabilities whose second column is `scores`; predicted = argmax."""
    p = np.asarray(scores, dtype=np.float64)
    probabilities = np.stack([1.0 - p, p], axis=1)
    return probabilities, probabilities.argmax(axis=1)


def cases():
    rng = np.random.default_rng(11)
    out = []

    # Binary, scores rounded to one decimal: many ties, across classes too.
    truth = rng.integers(0, 2, 40)
    scores = np.round(np.clip(0.5 + 0.3 * (truth - 0.5) + rng.normal(0, 0.25, 40), 0, 1), 1)
    probabilities, predicted = binary_from_scores(scores)
    out.append(case("binary, tied scores", ["negative", "positive"], truth, predicted, probabilities))

    # Binary from softmaxed logits, as tunelab's evaluation computes them.
    truth = rng.integers(0, 2, 25)
    probabilities = softmax(rng.normal(0, 1, (25, 2)) + np.stack([1 - truth, truth], axis=1))
    out.append(case("binary, softmax", ["no", "yes"], truth, probabilities.argmax(axis=1), probabilities))

    # Binary, every score the same: the AUC is one half.
    probabilities, predicted = binary_from_scores([0.5] * 6)
    out.append(case("binary, all tied", ["a", "b"], [0, 1, 1, 0, 1, 0], predicted, probabilities))

    # Binary, only the positive class in the truth: the AUC is undefined.
    probabilities, predicted = binary_from_scores([0.2, 0.7, 0.9, 0.4])
    out.append(case("binary, one class in truth", ["negative", "positive"], [1, 1, 1, 1], predicted, probabilities))

    # 3 classes, the last never predicted.
    truth = rng.integers(0, 3, 30)
    predicted = np.where(rng.random(30) < 0.6, np.minimum(truth, 1), rng.integers(0, 2, 30))
    out.append(case("3 classes, one never predicted", ["negative", "neutral", "positive"], truth, predicted))

    # 4 classes, the third absent from the truth but predicted, the fourth absent from both.
    truth = rng.choice([0, 1], 20)
    predicted = np.where(rng.random(20) < 0.7, truth, rng.integers(0, 3, 20))
    out.append(case("4 classes, absent from truth", ["w", "x", "y", "z"], truth, predicted))

    # Perfect prediction, binary and 3 classes.
    probabilities, predicted = binary_from_scores([0.1, 0.9, 0.8, 0.3, 0.6])
    out.append(case("binary, perfect", ["negative", "positive"], predicted, predicted, probabilities))
    truth = [0, 1, 2, 2, 1, 0, 2]
    out.append(case("3 classes, perfect", ["a", "b", "c"], truth, truth))

    # 5 classes, 200 examples, mostly right.
    truth = rng.integers(0, 5, 200)
    predicted = np.where(rng.random(200) < 0.65, truth, rng.integers(0, 5, 200))
    out.append(case("5 classes, random", ["one", "two", "three", "four", "five"], truth, predicted))
    return out


if __name__ == "__main__":
    # The zero divisions and the undefined AUC are part of the cases.
    warnings.simplefilter("ignore", UndefinedMetricWarning)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    path = FIXTURES / "classification_metrics.json"
    path.write_text(json.dumps({"cases": cases()}, indent=1) + "\n")
    print(f"wrote {path}")
