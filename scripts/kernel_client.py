#!/usr/bin/env python3
"""Drives a running `tunelab kernel` over its real sockets with jupyter_client, the library
Jupyter's own frontends use (tests/kernel.rs runs it from .venv).

    kernel_client.py CONNECTION_FILE < ops.json > results.json

ops.json is a list of requests, each {"op": ..., ...}:
  {"op": "kernel_info"}
  {"op": "execute", "code": "1 + 1", "interrupt_after": 0.3 (optional: seconds, then an
   interrupt_request on the control channel)}
  {"op": "execute_all", "codes": ["1", "2"]}: every cell sent at once ("Run All"), one result each
  {"op": "execute_then_shutdown", "code": ..., "after": 0.5}: a shutdown_request while the cell runs
  {"op": "complete", "code": "trai", "cursor_pos": 4}
  {"op": "inspect", "code": "recipe", "cursor_pos": 3}
  {"op": "is_complete", "code": "let r = recipe(#{"}
  {"op": "comm_info"} / {"op": "history"}
  {"op": "bad_signature"}: an execute_request signed with another key (the kernel must ignore it)
  {"op": "shutdown"}: shutdown_request on the control channel
The output is one result per request: {"msg_type", "reply" (the reply's content), "iopub"
(the messages the request caused, up to its `idle`), "ms" (request to idle)}.
"""
import json
import sys
import time

from jupyter_client import BlockingKernelClient
from jupyter_client.session import Session


def reply_to(channel, msg_id, timeout):
    deadline = time.time() + timeout
    while True:
        msg = channel.get_msg(timeout=max(0.01, deadline - time.time()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def iopub_of(client, msg_id, timeout):
    """The iopub messages caused by one request, up to its status: idle."""
    out = []
    deadline = time.time() + timeout
    while True:
        msg = client.get_iopub_msg(timeout=max(0.01, deadline - time.time()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        out.append({"msg_type": msg["msg_type"], "content": msg["content"]})
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return out


def main():
    client = BlockingKernelClient()
    client.load_connection_file(sys.argv[1])
    client.start_channels()
    client.wait_for_ready(timeout=30)
    results = []
    for op in json.load(sys.stdin):
        kind, timeout = op["op"], op.get("timeout", 60)
        start = time.perf_counter()
        channel = client.shell_channel
        if kind == "execute_then_shutdown":
            # A cell still running when the kernel is shut down (the notebook closed mid-training).
            msg_id = client.execute(op["code"])
            time.sleep(op.get("after", 0.5))
            client.shutdown()
            results.append({"msg_type": "none", "reply": {}, "iopub": [], "ms": 0})
            continue
        if kind == "execute_all":
            # "Run All": every cell sent at once, then each reply collected in order.
            ids = [client.execute(code) for code in op["codes"]]
            for msg_id in ids:
                reply = reply_to(client.shell_channel, msg_id, timeout)
                results.append({"msg_type": reply["msg_type"], "reply": reply["content"], "iopub": iopub_of(client, msg_id, timeout), "ms": 0})
            continue
        if kind == "execute":
            msg_id = client.execute(op["code"], silent=op.get("silent", False))
            if "interrupt_after" in op:
                time.sleep(op["interrupt_after"])
                client.control_channel.send(client.session.msg("interrupt_request", {}))
        elif kind == "kernel_info":
            msg_id = client.kernel_info()
        elif kind == "complete":
            msg_id = client.complete(op["code"], op.get("cursor_pos"))
        elif kind == "inspect":
            msg_id = client.inspect(op["code"], op.get("cursor_pos"))
        elif kind == "is_complete":
            msg_id = client.is_complete(op["code"])
        elif kind == "comm_info":
            msg_id = client.comm_info()
        elif kind == "history":
            msg_id = client.history()
        elif kind == "bad_signature":
            forged = Session(key=b"not-the-key", username=client.session.username)
            msg = forged.msg("execute_request", {"code": "1 + 1", "silent": False, "store_history": True,
                                                  "user_expressions": {}, "allow_stdin": False})
            forged.send(client.shell_channel.socket, msg)
            time.sleep(op.get("wait", 0.5))
            # Nothing may come back: a reply or any iopub message for it is a failure.
            seen = []
            for get in (client.get_shell_msg, client.get_iopub_msg):
                try:
                    while True:
                        m = get(timeout=0.2)
                        if m["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                            seen.append(m["msg_type"])
                except Exception:
                    pass
            results.append({"msg_type": "none", "reply": {"seen": seen}, "iopub": [], "ms": 0})
            continue
        elif kind == "shutdown":
            msg_id = client.shutdown(restart=op.get("restart", False))
            channel = client.control_channel
        else:
            raise SystemExit(f"unknown op {kind}")
        reply = reply_to(channel, msg_id, timeout)
        iopub = iopub_of(client, msg_id, timeout)
        ms = (time.perf_counter() - start) * 1000
        results.append({"msg_type": reply["msg_type"], "reply": reply["content"], "iopub": iopub, "ms": ms})
    client.stop_channels()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
