"""Golden values for tunelab's paired bootstrap over examples (src/bootstrap.rs), by numpy,
scipy and scikit-learn.

Run with `make reference-venv && .venv-ref/bin/python scripts/reference/bootstrap_fixture.py`.
Writes tests/fixtures/bootstrap.json, which tests/bootstrap_golden.rs reads.

The bootstrap's random draws are tunelab's own (ChaCha8), so the fixture fixes the resamples
itself: numpy draws 300 resamples of the example indices, and for each case this script
computes, for every resample, the mean metric of side A's runs minus side B's runs on those
examples, then the 2.5% and 97.5% quantiles of the differences (numpy.quantile, linear). The
Rust test feeds the same resamples to `bootstrap::differences` and `bootstrap::quantile`.

Cases: regression (rmse, mae, loss = MSE, pearson, spearman) with two runs a side, and
three-class classification (accuracy, macro_f1, loss = cross-entropy of the probabilities) with
one run a side.
"""

import json
import pathlib

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score

rng = np.random.default_rng(20261202)
N = 60
B = 300
resamples = rng.integers(0, N, size=(B, N))


def regression_metric(name, p, t):
    if name == "rmse":
        return float(np.sqrt(np.mean((p - t) ** 2)))
    if name == "mae":
        return float(np.mean(np.abs(p - t)))
    if name == "loss":
        return float(np.mean((p - t) ** 2))
    if name == "pearson":
        return float(pearsonr(p, t).statistic)
    if name == "spearman":
        return float(spearmanr(p, t).statistic)
    raise ValueError(name)


def classification_metric(name, probs, t):
    predicted = probs.argmax(axis=1)
    if name == "accuracy":
        return float(accuracy_score(t, predicted))
    if name == "macro_f1":
        return float(f1_score(t, predicted, average="macro", labels=[0, 1, 2], zero_division=0))
    if name == "loss":
        return float(-np.mean(np.log(probs[np.arange(len(t)), t])))
    raise ValueError(name)


def case(task, metric, targets, a, b, score):
    diffs = []
    for idx in resamples:
        ma = np.mean([score(metric, run[idx], targets[idx]) for run in a])
        mb = np.mean([score(metric, run[idx], targets[idx]) for run in b])
        diffs.append(float(ma - mb))
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    return {
        "task": task,
        "metric": metric,
        "targets": targets.tolist(),
        "a": [run.tolist() for run in a],
        "b": [run.tolist() for run in b],
        "differences": diffs,
        "interval": [float(lo), float(hi)],
    }


cases = []
t = rng.normal(0.0, 2.0, size=N)
a = [t + rng.normal(0.0, 0.8, size=N) for _ in range(2)]
b = [t + rng.normal(0.1, 1.0, size=N) for _ in range(2)]
for metric in ["rmse", "mae", "loss", "pearson", "spearman"]:
    # Outputs one value per example, as tunelab stores a regression's outputs.
    c = case("regression", metric, t, a, b, regression_metric)
    c["a"] = [[[v] for v in run] for run in c["a"]]
    c["b"] = [[[v] for v in run] for run in c["b"]]
    cases.append(c)

classes = rng.integers(0, 3, size=N)


def probabilities(noise):
    logits = rng.normal(0.0, noise, size=(N, 3))
    logits[np.arange(N), classes] += 1.0
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


pa, pb = probabilities(1.0), probabilities(1.5)
for metric in ["accuracy", "macro_f1", "loss"]:
    cases.append(case("classification", metric, classes, [pa], [pb], classification_metric))

out = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "bootstrap.json"
out.write_text(json.dumps({"resamples": resamples.tolist(), "cases": cases}))
print(f"wrote {out}: {len(cases)} cases, {B} resamples of {N} examples")
