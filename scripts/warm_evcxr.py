#!/usr/bin/env python3
"""Compiles evcxr's cache once: starts the `tunelab-rust` kernel headlessly and runs the `:dep`
cell of a notebook (the first code cell), which compiles tunelab, torch-sys and every dependency
into EVCXR_TMPDIR. Later kernels reuse them.

    warm_evcxr.py notebooks/01-schedules.ipynb
"""
import json
import os
import sys

from jupyter_client.manager import start_new_kernel

notebook = json.load(open(sys.argv[1], encoding="utf-8"))
dep = next("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
manager, client = start_new_kernel(kernel_name="tunelab-rust", cwd=os.path.dirname(os.path.abspath(sys.argv[1])), startup_timeout=300)
try:
    failed = []

    def collect(msg):
        if msg["msg_type"] == "error":
            failed.append(msg["content"]["evalue"])
        elif msg["msg_type"] == "stream" and msg["content"]["name"] == "stderr" and "error" in msg["content"]["text"].lower():
            failed.append(msg["content"]["text"])

    for code in [dep, "use tunelab::prelude::*;\nlet warm = Recipe::default();"]:
        reply = client.execute_interactive(code, timeout=3600, output_hook=collect)
        if reply["content"]["status"] != "ok" or failed:
            sys.exit(f"warm_evcxr.py: the cell failed: {failed or reply['content']}")
finally:
    manager.shutdown_kernel(now=True)
