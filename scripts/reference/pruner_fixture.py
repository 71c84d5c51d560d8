"""Golden decisions of Optuna's SuccessiveHalvingPruner, for tunelab's successive-halving pruner
(src/search/pruner.rs).

Run with `make reference-venv && .venv-ref/bin/python scripts/reference/pruner_fixture.py`
(optuna is in scripts/reference/requirements.txt). Writes tests/fixtures/pruner.json, which
tests/pruner_golden.rs reads.

Each case is a study run one trial after another: each trial reports a known sequence of
intermediate values (a dev score at steps 1, 2, ...), and after each report asks the pruner
whether to stop; a pruned trial stops there, a trial that reaches its last step completes.
The fixture records the settings, every trial's values and the step at which Optuna pruned
it (null: completed). Cases vary the reduction factor, min_resource (a number and "auto",
which waits for a completed trial), min_early_stopping_rate, bootstrap_count, the direction,
sparse reporting steps (several rungs passed in one report) and a NaN value.
"""

import json
import math
import pathlib

import numpy as np
import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def run(settings, direction, curves, steps):
    pruner = optuna.pruners.SuccessiveHalvingPruner(**settings)
    study = optuna.create_study(direction=direction, pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
    pruned_at = []
    for curve in curves:
        trial = study.ask()
        stop = None
        for step, value in zip(steps, curve):
            trial.report(value, step)
            if trial.should_prune():
                stop = step
                break
        if stop is None:
            study.tell(trial, curve[-1])
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        pruned_at.append(stop)
    return pruned_at


rng = np.random.default_rng(23)
cases = []


def add(name, settings, direction, n_trials, steps, nan_at=None):
    curves = []
    for t in range(n_trials):
        level = rng.normal(1.0, 0.3)
        curve = [float(level + 1.0 / (1 + s) + rng.normal(0, 0.05)) for s in range(len(steps))]
        if direction == "maximize":
            curve = [-v for v in curve]
        curves.append(curve)
    if nan_at is not None:
        curves[nan_at[0]][nan_at[1]] = float("nan")
    pruned = run(settings, direction, curves, steps)
    cases.append({
        "name": name,
        "settings": {k: v for k, v in settings.items()},
        "direction": direction,
        "steps": steps,
        "curves": [[None if math.isnan(v) else v for v in c] for c in curves],
        "pruned_at": pruned,
    })


add("eta 3, min 1", dict(min_resource=1, reduction_factor=3), "minimize", 20, list(range(1, 28)))
add("eta 2, min 2, maximize", dict(min_resource=2, reduction_factor=2), "maximize", 16, list(range(1, 17)))
add("eta 4, auto min", dict(min_resource="auto", reduction_factor=4), "minimize", 15, list(range(1, 201)))
add("eta 3, min 1, early stopping rate 1", dict(min_resource=1, reduction_factor=3, min_early_stopping_rate=1), "minimize", 15, list(range(1, 28)))
add("eta 2, min 1, bootstrap 3", dict(min_resource=1, reduction_factor=2, bootstrap_count=3), "minimize", 12, list(range(1, 9)))
add("eta 2, min 1, sparse steps", dict(min_resource=1, reduction_factor=2), "minimize", 14, [5, 10, 20, 40])
add("eta 3, min 1, a NaN", dict(min_resource=1, reduction_factor=3), "minimize", 10, list(range(1, 10)), nan_at=(4, 2))
path = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "pruner.json"
path.write_text(json.dumps({"optuna": optuna.__version__, "cases": cases}) + "\n")
print(f"wrote {path}: {len(cases)} cases")
for c in cases:
    print(c["name"], c["pruned_at"])
