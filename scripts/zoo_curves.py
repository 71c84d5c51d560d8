#!/usr/bin/env python3
"""Has the dev score flattened before a fold ends? For each fold of a trained-regime recipe
(results/zoo/amazon/<recipe>-seed<s>/fold-<k>/eval.jsonl, committed; folds still training
are left out), prints the best dev
RMSE of the plain weights up to step 100, up to step 150 and over the whole fold (200 steps),
and the step that gave the best; then the mean gain of the last 50 steps over the first 150, and
the mean dev RMSE in steps 50-100, 100-150 and 150-200 (a trend that the noise of a best hides).
Then, per run, the out-of-fold RMSE of three choices of weights from each fold's metrics.json:
the selected best (frequent evaluation: the run's CV score; optimistic, the fold that scores it
also chose it), the last step's, and the SWA average's: each the root of the folds' squared
RMSEs weighted by their sizes, which is the RMSE of all the folds' predictions together.

    python3 scripts/zoo_curves.py                      (the best seed recipe, every seed found)
    python3 scripts/zoo_curves.py results/zoo/amazon/fgm-seed1
Standard library only.
"""
import glob
import json
import os
import sys


def curve(fold):
    rows = [json.loads(line) for line in open(os.path.join(fold, "eval.jsonl"))]
    return [(r["step"], r["metrics"]["rmse"]) for r in rows if r["weights"] == "model"]


def best_until(points, step):
    return min((v for s, v in points if s <= step), default=float("nan"))


def pooled(values, sizes):
    """The RMSE of the folds' predictions together, from each fold's RMSE and size."""
    return (sum(n * v * v for v, n in zip(values, sizes)) / sum(sizes)) ** 0.5


def weights(runs):
    print(f"\n{'run':<40} {'selected':>9} {'last':>9} {'SWA':>9} {'last - selected':>16}")
    for run in runs:
        if not os.path.exists(os.path.join(run, "cv.json")):
            continue  # not scored yet
        ms = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(run, "*fold-*", "metrics.json")))]
        if any(m["best"]["metric"] != "rmse" for m in ms):
            sys.exit(f"{run}: its runs select by {ms[0]['best']['metric']}, not rmse")
        sizes = [m["dev_examples"] for m in ms]
        best, last = pooled([m["best"]["value"] for m in ms], sizes), pooled([m["last"]["rmse"] for m in ms], sizes)
        swa = pooled([m["swa"]["rmse"] for m in ms], sizes) if all(m.get("swa") for m in ms) else float("nan")
        print(f"{os.path.relpath(run, 'results/zoo'):<40} {best:>9.4f} {last:>9.4f} {swa:>9.4f} {last - best:>+16.4f}")


def main():
    runs = sys.argv[1:] or sorted(glob.glob("results/zoo/amazon/best-seed-recipe-seed*"))
    gains, late, windows = [], 0, {w: [] for w in ((50, 100), (100, 150), (150, 200))}
    print(f"{'fold':<40} {'best <= 100':>11} {'best <= 150':>11} {'best':>8} {'at step':>8}")
    for run in runs:
        for fold in sorted(glob.glob(os.path.join(run, "fold-*"))):
            if not os.path.exists(os.path.join(fold, "metrics.json")):
                continue  # still training
            points = curve(fold)
            last = max(s for s, _ in points)
            step, value = min(points, key=lambda p: p[1])
            b100, b150 = best_until(points, 100), best_until(points, 150)
            gains.append(b150 - value)
            for (lo, hi), means in windows.items():
                inside = [v for s, v in points if lo < s <= hi]
                if inside:
                    means.append(sum(inside) / len(inside))
            late += step > 150
            print(f"{os.path.relpath(fold, 'results/zoo'):<40} {b100:>11.4f} {b150:>11.4f} {value:>8.4f} {step:>5}/{last}")
    if gains:
        print(f"{len(gains)} folds: the last 50 steps improve the best dev RMSE by {sum(gains) / len(gains):.4f} on average "
              f"(largest {max(gains):.4f}); {late} folds found their best after step 150")
        print("mean dev RMSE of the evaluations in steps " + ", ".join(
            f"({lo}, {hi}]: {sum(m) / len(m):.4f}" for (lo, hi), m in windows.items() if m) + " (averaged over the folds)")
    weights(runs)


if __name__ == "__main__":
    main()
