"""Golden values for tunelab's fp16 loss scaler, produced by torch.amp.GradScaler.

Run with `.venv-ref/bin/python scripts/reference/scaler_fixture.py`. Writes
tests/fixtures/scaler.json: a GradScaler with growth_interval 3 (so that growth is seen) driven
over 12 steps of synthetic gradients on two parameters, some steps holding an inf or a NaN. For
each step: the gradients as given (already multiplied by the scale, as a scaled loss's backward
would leave them), whether the optimizer step ran, the unscaled gradients the step saw, and the
scale after the update.
"""

import json
import math
import pathlib

import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "scaler.json"


def main() -> None:
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.zeros(3))
    b = torch.nn.Parameter(torch.zeros(2, 2))
    sgd = torch.optim.SGD([a, b], lr=0.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=3)
    bad = {3: ("a", math.inf), 4: ("b", math.nan), 9: ("a", -math.inf)}
    steps = []
    for step in range(12):
        scaler.scale(torch.ones(()))  # as scaler.scale(loss) would: sets the scale up on first use
        scale = scaler.get_scale()
        ga = torch.randn(3) * scale
        gb = torch.randn(2, 2) * scale
        if step in bad:
            which, value = bad[step]
            (ga if which == "a" else gb).view(-1)[0] = value
        a.grad, b.grad = ga.clone(), gb.clone()
        seen = {}

        def record(*_args, **_kwargs):
            seen["a"], seen["b"] = a.grad.clone(), b.grad.clone()

        sgd.step = record  # GradScaler.step calls optimizer.step() only when no inf was found
        scaler.step(sgd)
        scaler.update()
        steps.append(
            {
                "scale_before": scale,
                "grads": [[str(x) for x in ga.tolist()], [str(x) for x in gb.view(-1).tolist()]],
                "stepped": bool(seen),
                "unscaled": [seen["a"].tolist(), seen["b"].view(-1).tolist()] if seen else None,
                "scale_after": scaler.get_scale(),
            }
        )
    OUT.write_text(json.dumps({"init_scale": 1024.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 3, "steps": steps}, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
