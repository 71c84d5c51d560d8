"""A TensorBoard event file written by the official `tensorboard` package, for tunelab's writer.

Run with `python3 -m venv /tmp/tb && /tmp/tb/bin/pip install tensorboard` and then
`/tmp/tb/bin/python scripts/reference/tensorboard_fixture.py` (made with tensorboard 2.21).
Writes into tests/fixtures/tensorboard/:

- events.out.tfevents.1700000000.reference: the file that
  tensorboard.summary.writer.event_file_writer.EventFileWriter writes for the events below,
  its clock fixed so that the file-version event it writes first has a known wall time;
- events.json: the same events as data, which tests/tensorboard.rs replays through
  tunelab::tensorboard to compare the bytes.

The events cover what tunelab writes and the corners of the encoding: several scalars in one
event, step 0 and a value of 0.0 (proto3 leaves a zero step out but keeps a zero simple_value,
which is in a oneof), a step above 2^32, negative and non-ASCII values and tags, a tag longer
than 127 bytes (a two-byte length), and a SessionLog START (the restart marker tunelab writes
when a run resumes).
"""

import json
import pathlib
import shutil
import tempfile
from unittest import mock

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer import event_file_writer

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "tensorboard"

START_TIME = 1700000000.25
WRITER = "tensorboard.summary.writer.event_file_writer"
EVENTS = [
    {"wall_time": 1700000001.5, "step": 1,
     "scalars": [["train/loss", 0.6931471805599453], ["lr/head", 5e-4], ["lr/layer.0", 3.1e-05]]},
    {"wall_time": 1700000001.75, "step": 0, "scalars": [["train/loss", 0.0]]},
    {"wall_time": 1700000002.0, "step": 300,
     "scalars": [["dev/rmse", 1.367], ["dev/loss", 1.8691], ["dev/accuracy", 1.0], ["dev/support.négatif", 17.0]]},
    {"wall_time": 1700000003.125, "step": 2, "restart": True},
    {"wall_time": 1700000004.0, "step": 2**40, "scalars": [["swa/pearson", -0.25], ["swa/" + "x" * 140, 3.0e38]]},
]


def event(e):
    if e.get("restart"):
        return event_pb2.Event(wall_time=e["wall_time"], step=e["step"],
                               session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START))
    values = [summary_pb2.Summary.Value(tag=tag, simple_value=value) for tag, value in e["scalars"]]
    return event_pb2.Event(wall_time=e["wall_time"], step=e["step"], summary=summary_pb2.Summary(value=values))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        with mock.patch.object(event_file_writer.time, "time", return_value=START_TIME):
            writer = event_file_writer.EventFileWriter(tmp)
        for e in EVENTS:
            writer.add_event(event(e))
        writer.close()
        (written,) = pathlib.Path(tmp).iterdir()
        shutil.copyfile(written, OUT / "events.out.tfevents.1700000000.reference")
    spec = {"file_version": {"wall_time": START_TIME, "writer": WRITER}, "events": EVENTS}
    (OUT / "events.json").write_text(json.dumps(spec, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote the TensorBoard fixture to {OUT}")


if __name__ == "__main__":
    main()
