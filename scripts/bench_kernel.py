#!/usr/bin/env python3
"""The two notebook kernels side by side: the rhai kernel (`tunelab kernel`, kernelspec
`tunelab-rhai`) against evcxr's Rust kernel (kernelspec `tunelab-rust`, its tunelab cache in
target/evcxr), in one run, measured through jupyter_client as a notebook frontend sees them.

Both kernels are started by jupyter_client's KernelManager from the kernelspecs installed in
.venv (`make notebook`'s setup: scripts/notebooks.sh --setup), in the notebooks/ folder (paths are
`../models/...`, `../data/...`), with TUNELAB_RUNS pointing at a temporary folder. Each of the
--runs rounds starts, in this order, one rhai session, one plain evcxr session and one evcxr
session with tunelab, and measures:

  start: `1 + 1`   kernel process started -> the first cell's output (`1 + 1` -> its result),
                   the readiness handshake (kernel_info, iopub subscribed) included, as in a
                   frontend.
                   For evcxr a session without any `:dep`, given an EVCXR_TMPDIR of its own
                   (warmed by one untimed session) so that it never rewrites tunelab's cache.
  start: tunelab   evcxr: process started -> the output of its second cell, `use
                   tunelab::prelude::*;` and a tiny tunelab expression, after the notebooks'
                   `:dep` cell. rhai: its `1 + 1` start again (tunelab's functions are built in).
  1 + 1            a trivial cell in a warm session (evcxr: the tunelab session), request -> idle
  first plan       a session's first plan of MiniLM on the VADER sentences (reads the model and
                   the data) with its LR chart, request -> idle
  plan             a cell that changes one recipe value (the LLRD decay), re-plans (the model and
                   data already used in the session) and draws the LR chart, request -> idle.
                   rhai: `plan(m, d, recipe(#{...}), t)` (group table, LR table, chart as PNG and
                   SVG); evcxr: `spec.plan()?` and `Chart::lr(&plan.lrs)` (SVG)
  train 20 steps   MiniLM, 2,000 training sentences, batch 16, max_length 64, max_steps 20, quiet,
                   into TUNELAB_RUNS (the model loaded, 20 steps, the end-of-run evaluation of the
                   1,112 dev sentences with the best and the SWA weights, the run folder written),
                   request -> idle

`1 + 1` and `plan` are run --repeat times in each session, the others once: every number is a
median over the rounds (times the repeats). Untimed first: one session of each kind, so that
the page cache and evcxr's cache are warm (the time evcxr's first tunelab cell took there is
printed; more than --first-timeout seconds means its cache is being recompiled, and the script
stops rather than measure that). Prints the table and writes it as JSON to
target/bench_kernel.json.

    .venv/bin/python scripts/bench_kernel.py [--runs 5] [--repeat 3]
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from queue import Empty

from jupyter_client import KernelManager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
OUTPUTS = ("execute_result", "display_data")

# ---- the cells ------------------------------------------------------------------------------

RHAI = {
    "setup": """
let m = model("../models/all-MiniLM-L6-v2");
let d = data(#{ train: "../data/vader-movies/train.tsv", dev: "../data/vader-movies/dev.tsv",
                columns: #{ text: "text", label: "score" }, kind: "regression", train_limit: 2000 });
let t = training(#{ epochs: 1, batch_size: 32, max_length: 64 });
plan(m, d, recipe(), t)
""",
    "plan": """
let r = recipe(#{{ lr: #{{ kind: "llrd", top_lr: 1e-4, decay: {decay}, head_lr: 5e-4 }}, warmup: 0.15,
                  swa: #{{ start: 0.75, lr: #{{ scale: 0.5 }} }} }});
plan(m, d, r, t)
""",
    "train": """
let run = train(m, d, recipe(#{ lr: #{ kind: "llrd", top_lr: 1e-4, decay: 0.9, head_lr: 5e-4 }, warmup: 0.15,
                                swa: #{ start: 0.75, lr: #{ scale: 0.5 } } }),
                training(#{ name: "bench", epochs: 1, batch_size: 16, max_length: 64, max_steps: 20 }));
run.steps
""",
}

# The notebooks' first cell (notebooks/01-schedules.ipynb): the same dependencies, so that the
# crates compiled into target/evcxr are reused.
EVCXR_DEP = """:dep tunelab = { path = "..", default-features = false, features = ["evcxr"] }
:dep tch = "0.24"
"""
EVCXR = {
    "first": "use tunelab::prelude::*;\nTrainConfig::default().batch_size",
    "setup": """
let data = DataSpec {
    train_limit: Some(2000),
    ..DataSpec::new("../data/vader-movies/train.tsv", "../data/vader-movies/dev.tsv", "text", "score", TaskKind::Regression)
};
let mut spec = RunSpec {
    model: "../models/all-MiniLM-L6-v2".into(),
    pooling: Pooling::default(),
    data,
    recipe: Recipe::default(),
    training: TrainConfig { epochs: 1, batch_size: 32, max_length: 64, ..TrainConfig::default() },
};
let plan = spec.plan()?;
Chart::lr(&plan.lrs)
""",
    "plan": """
spec.recipe = Recipe {{
    lr: LrLayout::Llrd {{ top_lr: 1e-4, decay: {decay}, head_lr: 5e-4 }},
    warmup: Warmup::Fraction(0.15),
    swa: Some(Swa {{ start: At::Fraction(0.75), lr: Some(SwaLr::Scale(0.5)), ..Swa::default() }}),
    ..Recipe::default()
}};
let plan = spec.plan()?;
Chart::lr(&plan.lrs)
""",
    "train": """
let bench = RunSpec {
    recipe: Recipe {
        lr: LrLayout::Llrd { top_lr: 1e-4, decay: 0.9, head_lr: 5e-4 },
        warmup: Warmup::Fraction(0.15),
        swa: Some(Swa { start: At::Fraction(0.75), lr: Some(SwaLr::Scale(0.5)), ..Swa::default() }),
        ..Recipe::default()
    },
    training: TrainConfig { name: "bench".into(), epochs: 1, batch_size: 16, max_length: 64, max_steps: Some(20), ..TrainConfig::default() },
    ..spec.clone()
};
let run = bench.run_with(&RunControl::quiet_under(std::env::var("TUNELAB_RUNS")?))?;
run.metrics.steps
""",
}

# ---- driving a kernel -----------------------------------------------------------------------


class CellFailed(Exception):
    pass


class Session:
    """One kernel started from its kernelspec; `t0` is taken just before the process starts."""

    def __init__(self, kernel_name, env, spec_env=None, timeout=120):
        self.km = KernelManager(kernel_name=kernel_name)
        if spec_env:  # the kernelspec's env wins over the one given to start_kernel
            self.km.kernel_spec.env.update(spec_env)
        self.t0 = time.perf_counter()
        self.km.start_kernel(cwd=NOTEBOOKS, env={**os.environ, **env})
        self.client = self.km.client()
        self.client.start_channels()
        # Ready: a kernel_info reply, and iopub subscribed (a status message of one of the
        # requests arrives). kernel_info is re-sent every 20 ms until then, so that the wait adds
        # at most about 20 ms to the start (the replies to the extra requests are ignored).
        deadline = time.time() + timeout
        sent, replied = set(), False
        while True:
            if time.time() > deadline:
                self.close()
                raise CellFailed(f"{kernel_name}: not ready within {timeout} s")
            sent.add(self.client.kernel_info())
            try:
                if not replied:
                    self.client.get_shell_msg(timeout=0.02)
                    replied = True
                msg = self.client.get_iopub_msg(timeout=0.02)
                if msg["parent_header"].get("msg_id") in sent:
                    break
            except Empty:
                continue

    def _until_idle(self, msg_id, timeout):
        """The request's iopub messages up to its idle, each with its arrival time."""
        seen = []
        deadline = time.time() + timeout
        while True:
            msg = self.client.get_iopub_msg(timeout=max(0.01, deadline - time.time()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            seen.append((time.perf_counter(), msg))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return seen

    def run(self, code, timeout, want=None):
        """Runs a cell: (seconds request -> idle, the time of its first output, its messages).
        Fails on an error, and when `want` (a MIME type) is in none of its outputs."""
        start = time.perf_counter()
        msg_id = self.client.execute(code)
        try:
            seen = self._until_idle(msg_id, timeout)
        except Empty:
            raise CellFailed(f"no idle within {timeout} s:\n{code}") from None
        seconds = time.perf_counter() - start
        msgs = [m for _, m in seen]
        errors = [m["content"] for m in msgs if m["msg_type"] == "error"]
        reply = self.client.get_shell_msg(timeout=10)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.client.get_shell_msg(timeout=10)
        if errors or reply["content"]["status"] != "ok":
            what = errors[0] if errors else reply["content"]
            raise CellFailed(f"{what.get('ename')}: {what.get('evalue')}\n{code}")
        outputs = [(t, m) for t, m in seen if m["msg_type"] in OUTPUTS]
        if want and not any(want in m["content"].get("data", {}) for _, m in outputs):
            raise CellFailed(f"no {want} output:\n{code}")
        first = outputs[0][0] if outputs else None
        return seconds, first, msgs

    def close(self):
        try:
            self.km.shutdown_kernel(now=False)
        except Exception:
            self.km.shutdown_kernel(now=True)
        self.client.stop_channels()


def text_of(msgs):
    for m in msgs:
        if m["msg_type"] == "execute_result":
            return m["content"]["data"].get("text/plain", "")
    return ""


# ---- one round ------------------------------------------------------------------------------


def rhai_round(env, repeat, timeout, samples):
    s = Session("tunelab-rhai", env)
    try:
        _, first, msgs = s.run("1 + 1", timeout)
        assert text_of(msgs).strip() == "2", text_of(msgs)
        samples["start_plain"].append(first - s.t0)
        samples["trivial"].extend(s.run("1 + 1", timeout)[0] for _ in range(repeat))
        samples["first_plan"].append(s.run(RHAI["setup"], timeout, want="image/png")[0])
        for i in range(repeat):
            code = RHAI["plan"].format(decay=f"{0.8 + 0.02 * i:.2f}")
            samples["plan"].append(s.run(code, timeout, want="image/png")[0])
        seconds, _, msgs = s.run(RHAI["train"], timeout)
        assert text_of(msgs).strip() == "20", f"the rhai run did not take 20 steps: {text_of(msgs)!r}"
        samples["train"].append(seconds)
    finally:
        s.close()


def evcxr_plain_round(env, own_tmp, timeout, samples=None):
    s = Session("tunelab-rust", env, spec_env={"EVCXR_TMPDIR": own_tmp})
    try:
        _, first, msgs = s.run("1 + 1", timeout)
        assert text_of(msgs).strip() == "2", text_of(msgs)
        if samples is not None:
            samples["start_plain"].append(first - s.t0)
        return first - s.t0
    finally:
        s.close()


def evcxr_first_tunelab(s, first_timeout):
    s.run(EVCXR_DEP, first_timeout)
    _, first, msgs = s.run(EVCXR["first"], first_timeout)
    assert text_of(msgs).strip() == "32", text_of(msgs)
    return first - s.t0


def evcxr_round(env, repeat, timeout, first_timeout, samples):
    s = Session("tunelab-rust", env)
    try:
        samples["start_tunelab"].append(evcxr_first_tunelab(s, first_timeout))
        samples["trivial"].extend(s.run("1 + 1", timeout)[0] for _ in range(repeat))
        samples["first_plan"].append(s.run(EVCXR["setup"], timeout, want="image/svg+xml")[0])
        for i in range(repeat):
            code = EVCXR["plan"].format(decay=f"{0.8 + 0.02 * i:.2f}")
            samples["plan"].append(s.run(code, timeout, want="image/svg+xml")[0])
        seconds, _, msgs = s.run(EVCXR["train"], timeout)
        assert text_of(msgs).strip() == "20", f"the evcxr run did not take 20 steps: {text_of(msgs)!r}"
        samples["train"].append(seconds)
    finally:
        s.close()


# ---- the table ------------------------------------------------------------------------------

ROWS = [
    # key, label, rhai's key
    ("start_plain", "kernel start -> first output (`1 + 1`)", "start_plain"),
    ("start_tunelab", "kernel start -> first tunelab output", "start_plain"),
    ("trivial", "`1 + 1` cell, warm session", "trivial"),
    ("first_plan", "first plan in a session (reads MiniLM + data) + LR chart", "first_plan"),
    ("plan", "change one recipe value, re-plan + LR chart", "plan"),
    ("train", "train 20 steps (batch 16, max_length 64) + final eval", "train"),
]


def fmt(seconds):
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds: fresh sessions of each kernel (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="`1 + 1` and plan cells per session (default 3)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds any cell may take (default 900)")
    parser.add_argument("--first-timeout", type=int, default=300,
                        help="seconds evcxr's `:dep` cell or first tunelab cell may take (default 300)")
    parser.add_argument("--out", default="target/bench_kernel.json", help="the JSON file (relative to the repository)")
    args = parser.parse_args()

    rhai = {k: [] for k, _, _ in ROWS}
    evcxr = {k: [] for k, _, _ in ROWS}
    warmup = {}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench_kernel-") as folder:
        env = {"TUNELAB_RUNS": os.path.join(folder, "runs")}
        own_tmp = os.path.join(folder, "evcxr-plain")
        os.makedirs(own_tmp)
        try:
            # Untimed: page cache, the plain session's own EVCXR_TMPDIR, evcxr's tunelab cache.
            t = time.perf_counter()
            Session("tunelab-rhai", env).close()
            warmup["rhai start + shutdown"] = time.perf_counter() - t
            warmup["evcxr plain start -> `1 + 1` (own fresh EVCXR_TMPDIR)"] = evcxr_plain_round(env, own_tmp, args.timeout)
            s = Session("tunelab-rust", env)
            try:
                warmup["evcxr start -> first tunelab output"] = evcxr_first_tunelab(s, args.first_timeout)
            finally:
                s.close()
            for name, seconds in warmup.items():
                print(f"warm-up (untimed): {name}: {fmt(seconds)}", flush=True)
            for r in range(args.runs):
                rhai_round(env, args.repeat, args.timeout, rhai)
                evcxr_plain_round(env, own_tmp, args.timeout, evcxr)
                evcxr_round(env, args.repeat, args.timeout, args.first_timeout, evcxr)
                print(f"round {r + 1}/{args.runs} done ({time.time() - started:.0f} s)", flush=True)
                shutil.rmtree(env["TUNELAB_RUNS"], ignore_errors=True)
        except CellFailed as e:
            sys.exit(f"bench_kernel.py: a cell failed or timed out: {e}\n(if it was evcxr's `:dep` or first "
                     f"tunelab cell, its cache in target/evcxr is likely being recompiled: run "
                     f"scripts/notebooks.sh --setup first)")
    rhai["start_tunelab"] = list(rhai["start_plain"])

    rows = []
    for key, label, rkey in ROWS:
        r, e = rhai[rkey], evcxr[key]
        rm, em = statistics.median(r), statistics.median(e)
        rows.append({"measurement": label, "key": key, "rhai_median_s": rm, "evcxr_median_s": em,
                     "ratio_evcxr_over_rhai": em / rm, "n_rhai": len(r), "n_evcxr": len(e),
                     "rhai_s": r, "evcxr_s": e})
    width = max(len(row["measurement"]) for row in rows)
    header = f"{'measurement':<{width}}  {'rhai':>10}  {'evcxr':>10}  {'evcxr/rhai':>10}  n (rhai, evcxr)"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['measurement']:<{width}}  {fmt(row['rhai_median_s']):>10}  {fmt(row['evcxr_median_s']):>10}  "
              f"{row['ratio_evcxr_over_rhai']:>9.1f}×  {row['n_rhai']}, {row['n_evcxr']}")
    print("(rhai's `kernel start -> first tunelab output` is its `1 + 1` start: tunelab is built into the kernel)")

    report = {
        "script": "scripts/bench_kernel.py",
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "runs": args.runs,
        "repeat": args.repeat,
        "kernels": {"rhai": "tunelab-rhai", "evcxr": "tunelab-rust"},
        "warmup_s": warmup,
        "rows": rows,
    }
    out = os.path.join(ROOT, args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    print(f"written: {os.path.relpath(out, ROOT)}")


if __name__ == "__main__":
    main()
