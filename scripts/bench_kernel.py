#!/usr/bin/env python3
"""Latency of the rhai kernel (`tunelab kernel`), measured through jupyter_client as a
notebook frontend sees it. Medians of N (default 5):

  start  kernel process started -> the first cell's output (`1 + 1` -> execute_result)
  1+1    a trivial cell, request -> idle
  plan   a cell that changes one recipe value, re-plans MiniLM on the VADER sentences (model and
         data already used in the session) and draws the LR chart (PNG + SVG), request -> idle

    .venv/bin/python scripts/bench_kernel.py [--runs N] [--binary target/release/tunelab]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from queue import Empty

from jupyter_client import BlockingKernelClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SETUP = """
let m = model("models/all-MiniLM-L6-v2");
let d = data(#{ train: "data/vader-movies/train.tsv", dev: "data/vader-movies/dev.tsv",
                columns: #{ text: "text", label: "score" }, kind: "regression", train_limit: 2000 });
let t = training(#{ epochs: 1, batch_size: 32, max_length: 64 });
plan(m, d, recipe(), t)
"""
PLAN = """
let r = recipe(#{{ lr: #{{ kind: "llrd", top_lr: 1e-4, decay: {decay}, head_lr: 5e-4 }}, warmup: 0.15,
                  swa: #{{ start: 0.75, lr: #{{ scale: 0.5 }} }} }});
plan(m, d, r, t)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connection_file(folder):
    path = os.path.join(folder, "kernel.json")
    info = {"transport": "tcp", "ip": "127.0.0.1", "key": "bench", "signature_scheme": "hmac-sha256"}
    for name in ["shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"]:
        info[name] = free_port()
    with open(path, "w") as f:
        json.dump(info, f)
    return path


def until_idle(client, msg_id, timeout=600):
    """Waits for the request's idle; returns its iopub messages."""
    seen = []
    deadline = time.time() + timeout
    while True:
        msg = client.get_iopub_msg(timeout=max(0.01, deadline - time.time()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        seen.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return seen


def start_kernel(binary, folder):
    path = connection_file(folder)
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary, "kernel", "--connection-file", path], cwd=ROOT, stdout=subprocess.DEVNULL,
                            env={**os.environ, "TUNELAB_RUNS": os.path.join(folder, "runs")})
    client = BlockingKernelClient()
    client.load_connection_file(path)
    client.start_channels()
    # Ready: a kernel_info reply and iopub subscribed (its status messages arrive).
    while True:
        msg_id = client.kernel_info()
        try:
            client.get_shell_msg(timeout=0.5)
            until_idle(client, msg_id, timeout=0.5)
            break
        except Empty:
            continue
    msg_id = client.execute("1 + 1")
    for msg in until_idle(client, msg_id):
        if msg["msg_type"] == "execute_result":
            first = time.perf_counter() - t0
    return proc, client, first


def timed(client, code):
    t = time.perf_counter()
    msgs = until_idle(client, client.execute(code))
    errors = [m["content"] for m in msgs if m["msg_type"] == "error"]
    if errors:
        sys.exit(f"cell failed: {errors[0]['evalue']}\n{code}")
    return time.perf_counter() - t, msgs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--binary", default=os.path.join(ROOT, "target/release/tunelab"))
    args = parser.parse_args()
    starts, trivial, plans, first_plan = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            proc, client, first = start_kernel(args.binary, folder)
            starts.append(first)
            trivial.extend(timed(client, "1 + 1")[0] for _ in range(args.runs))
            seconds, msgs = timed(client, SETUP)
            first_plan.append(seconds)
            assert any("image/png" in m["content"].get("data", {}) for m in msgs if m["msg_type"] == "display_data")
            plans.extend(timed(client, PLAN.format(decay=0.8 + 0.02 * i))[0] for i in range(args.runs))
            client.shutdown()
            proc.wait(timeout=10)
            client.stop_channels()
    ms = lambda xs: f"{statistics.median(xs) * 1000:8.1f} ms (min {min(xs) * 1000:.1f}, max {max(xs) * 1000:.1f}, n={len(xs)})"
    print(f"kernel start -> first output  {ms(starts)}")
    print(f"`1 + 1` cell                  {ms(trivial)}")
    print(f"first plan (loads MiniLM)     {ms(first_plan)}")
    print(f"re-plan + LR chart cell       {ms(plans)}")


if __name__ == "__main__":
    main()
