"""Golden values for tunelab's paired intervals over seeds and repeats (`ablation::crossed`),
by numpy and scipy.

Run with `make reference-venv && .venv-ref/bin/python scripts/reference/intervals_fixture.py`.
Writes tests/fixtures/intervals.json, which tests/intervals_golden.rs reads.

Each case is a table of paired differences, one row per seed and one column per repeat of a
repeated cross-validation (seeds and fold assignments crossed). One column (or one row) is the
paired t interval, mean +- t(0.975, n - 1) sd / sqrt(n) (scipy.stats.t). With both, the grand
mean's variance in the two-way random-effects layout (Searle, Casella & McCulloch 1992, 4.6) is
(MS_seed + MS_repeat - MS_residual) / (S R) from the two-way ANOVA's mean squares, floored at
MS_residual / (S R), with Satterthwaite's degrees of freedom
(MS_seed + MS_repeat - MS_residual)^2 / (MS_seed^2/(S-1) + MS_repeat^2/(R-1) + MS_residual^2/((S-1)(R-1)))
(the floor uses (S-1)(R-1)), and the interval is mean +- t(0.975, df) sqrt(variance).
"""

import json
import pathlib

import numpy as np
from scipy import stats


def crossed(d):
    d = np.asarray(d, dtype=float)
    s, r = d.shape
    if s == 1 or r == 1:
        x = d.ravel()
        half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        return x.mean(), x.mean() - half, x.mean() + half, len(x) - 1
    grand = d.mean()
    seed_means, repeat_means = d.mean(axis=1), d.mean(axis=0)
    ms_seed = r * ((seed_means - grand) ** 2).sum() / (s - 1)
    ms_repeat = s * ((repeat_means - grand) ** 2).sum() / (r - 1)
    df_res = (s - 1) * (r - 1)
    ms_res = ((d - seed_means[:, None] - repeat_means[None, :] + grand) ** 2).sum() / df_res
    combined = ms_seed + ms_repeat - ms_res
    if combined > ms_res:
        df = combined**2 / (ms_seed**2 / (s - 1) + ms_repeat**2 / (r - 1) + ms_res**2 / df_res)
        var = combined / (s * r)
    else:
        df, var = df_res, ms_res / (s * r)
    half = stats.t.ppf(0.975, df) * np.sqrt(var)
    return grand, grand - half, grand + half, df


rng = np.random.default_rng(21)
cases = []
# The committed Amazon measurement (results/repeated-cv/amazon): full recipe minus baseline.
cases.append([[-0.2479, -0.2430, -0.2603], [-0.1720, -0.2674, -0.2081], [-0.2354, -0.2892, -0.2313]])
cases.append([[-0.1, -0.2, 0.0], [-0.1, 0.0, -0.2]])
for s, r in [(3, 3), (4, 2), (2, 5), (5, 1), (1, 4), (3, 2)]:
    seed = rng.normal(0, 0.02, size=(s, 1))
    fold = rng.normal(0, 0.03, size=(1, r))
    cases.append((-0.1 + seed + fold + rng.normal(0, 0.01, size=(s, r))).round(6).tolist())
# Residual noise larger than both effects: the floor.
cases.append([[0.0, 0.1, -0.1], [0.1, -0.1, 0.0], [-0.1, 0.0, 0.1]])
out = []
for d in cases:
    mean, lo, hi, df = crossed(d)
    out.append({"table": d, "mean": float(mean), "low": float(lo), "high": float(hi), "df": float(df)})
path = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "intervals.json"
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}: {len(out)} cases")
for o in out[:2]:
    print(o["mean"], o["low"], o["high"], o["df"])
