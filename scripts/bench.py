"""tunelab against the PyTorch + transformers reference, measured side by side.

Runs the full recipe (LLRD 0.9, warm-up over 15% of the steps, linear decay, re-initialised top
layer and pooler, SWA over the last quarter with each group annealing to half its LR, dev RMSE
every 20 steps) on all-MiniLM-L6-v2 and the VADER sentences, in three settings, alternating the
reference and tunelab:

1. identical work: both take the training file in order, in batches padded to their longest;
2. each at its best: the reference shuffles and pads dynamically (DataCollatorWithPadding),
   tunelab shuffles with length bucketing;
3. the seed-style reference (every batch padded to the maximum length) against tunelab at its best.

Prints one table: training samples/s and real tokens/s (evaluation excluded), peak RSS of the
process, wall time, best and SWA dev RMSE, and the ratios tunelab / reference; then the cost of
the techniques inside tunelab (the SWA update and the per-step LR bookkeeping as a share of a
step). Usage (after `make setup` and `make reference-venv`, or simply `make bench`):

    .venv-ref/bin/python scripts/bench.py [--train-limit 2000] [--threads 2] [--repeat 1]

The same side by side on MPNet-base (`make setup-mpnet` first; `make bench-mpnet`), identical
work only, on fewer sentences and a dev subset:

    .venv-ref/bin/python scripts/bench.py --model models/all-mpnet-base-v2 --settings 1 \
        --train-limit 512 --dev-limit 256
"""

import argparse
import json
import math
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def measured(cmd):
    """Runs a command: its stdout, its peak RSS (MiB, from wait4) and its wall seconds."""
    start = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            err.seek(0)
            sys.exit(f"{' '.join(map(str, cmd))} failed:\n{err.read()}")
    return out, usage.ru_maxrss / 1024, wall


def tunelab(args, tmp, name, shuffle, bucket):
    spec = {
        "model": args.model,
        "pooling": "pooler",
        "data": {
            "train": "data/vader-movies/train.tsv",
            "dev": "data/vader-movies/dev.tsv",
            "columns": {"text": "text", "label": "score"},
            "kind": "regression",
            "train_limit": args.train_limit,
            "dev_limit": args.dev_limit or None,
            "subset": {"kind": "first"},  # the rows the reference reads: the first N
        },
        "recipe": {
            "lr": {"kind": "llrd", "top_lr": 1e-4, "decay": 0.9, "head_lr": 5e-4},
            "weight_decay": 0.01,
            "warmup": 0.15,
            "decay": "linear",
            "reinit": {"top_layers": 1, "pooler": True},
            "swa": {"start": 0.75, "lr": {"scale": 0.5}, "anneal_steps": 5},
            "evaluation": {"every": 20, "epoch_end": False},
        },
        "training": {
            "epochs": 1, "batch_size": 32, "max_length": 64, "seed": 42, "threads": args.threads,
            "shuffle": shuffle, "bucket": bucket, "name": name,
        },
    }
    path = pathlib.Path(tmp) / f"{name}.json"
    path.write_text(json.dumps(spec))
    out_dir = pathlib.Path(tmp) / name
    _, rss, wall = measured([str(ROOT / "target/release/tunelab"), "train", str(path), "--out", str(out_dir), "--quiet"])
    m = json.loads((out_dir / "metrics.json").read_text())
    return {
        "samples": m["train_samples_per_second"],
        "tokens": m["train_tokens_per_second"],
        "rss": rss,
        "wall": wall,
        "best": m["best"]["value"],
        "swa": m["swa"]["rmse"],
        "steps": m["steps"],
        "lr_seconds": m["lr_seconds"],
        "swa_seconds": m["swa_seconds"],
        "step_seconds": m["step_seconds"],
    }


def reference(args, order, padding):
    cmd = [sys.executable, str(ROOT / "scripts/reference/train_reference.py"), "--model", args.model,
           "--train-limit", str(args.train_limit), "--dev-limit", str(args.dev_limit),
           "--threads", str(args.threads), "--order", order, "--padding", padding]
    out, rss, wall = measured(cmd)
    m = json.loads(out.strip().splitlines()[-1])
    return {"samples": m["train_samples_per_second"], "tokens": m["train_tokens_per_second"], "rss": rss, "wall": wall,
            "best": m["best_rmse"], "swa": m["swa_rmse"], "steps": m["steps"], "swa_seconds": m["swa_seconds"],
            "step_seconds": m["train_seconds"]}


def mean(rows, key):
    return sum(r[key] for r in rows) / len(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train-limit", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--model", default="models/all-MiniLM-L6-v2")
    p.add_argument("--dev-limit", type=int, default=0, help="dev sentences scored (0: all 1,112)")
    p.add_argument("--settings", default="123", help="which of the three settings to run, e.g. 1")
    args = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)

    settings = [
        ("1 identical work", ("file", "dynamic"), (False, None)),
        ("2 each at its best", ("shuffle", "dynamic"), (True, 8)),
        ("3 seed-style reference", ("shuffle", "max_length"), (True, 8)),
    ]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, (order, padding), (shuffle, bucket) in settings:
            if label[0] not in args.settings:
                continue
            refs, ours = [], []
            for r in range(args.repeat):
                print(f"{label}: reference ({order}, {padding}) run {r + 1}", file=sys.stderr)
                refs.append(reference(args, order, padding))
                print(f"{label}: tunelab (shuffle={shuffle}, bucket={bucket}) run {r + 1}", file=sys.stderr)
                ours.append(tunelab(args, tmp, f"s{label[0]}-{r}", shuffle, bucket))
            results.append((label, refs, ours))

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    print(f"machine: {cpu}, {os.cpu_count()} cores; {args.model}; threads {args.threads}; {args.train_limit} training sentences, "
          f"batch 32, max length 64, 1 epoch; mean of {args.repeat} run(s) each\n")
    head = ["setting", "who", "samples/s", "tokens/s", "peak RSS MiB", "wall s", "best RMSE", "SWA RMSE"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, refs, ours in results:
        for who, rows in (("reference", refs), ("tunelab", ours)):
            print(f"| {label} | {who} | {mean(rows, 'samples'):.1f} | {mean(rows, 'tokens'):.0f} | {mean(rows, 'rss'):.0f} | "
                  f"{mean(rows, 'wall'):.1f} | {mean(rows, 'best'):.4f} | {mean(rows, 'swa'):.4f} |")
        ratio = lambda k: mean(ours, k) / mean(refs, k)
        print(f"| {label} | tunelab / reference | {ratio('samples'):.2f}× | {ratio('tokens'):.2f}× | {ratio('rss'):.2f}× | "
              f"{ratio('wall'):.2f}× | {ratio('best'):.3f}× | {ratio('swa'):.3f}× |")
    print()
    for label, refs, ours in results:
        o = ours[0]
        step = o["step_seconds"] / o["steps"]
        updates = o["steps"] - math.floor(0.75 * o["steps"])
        print(f"{label}: tunelab step {step * 1000:.1f} ms; SWA update {o['swa_seconds'] / updates * 1000:.2f} ms "
              f"({o['swa_seconds'] / updates / step * 100:.2f}% of a step); LR bookkeeping "
              f"{o['lr_seconds'] / o['steps'] * 1e6:.1f} µs ({o['lr_seconds'] / o['step_seconds'] * 100:.4f}% of a step)")
        r = refs[0]
        print(f"{label}: reference SWA update {r['swa_seconds'] / updates * 1000:.2f} ms "
              f"({r['swa_seconds'] / updates / (r['step_seconds'] / r['steps']) * 100:.2f}% of a step)")


if __name__ == "__main__":
    main()
