"""Golden values for tunelab's techniques, produced by PyTorch and transformers.

Run with `make reference`. Writes into tests/fixtures/:

- schedules.json: transformers' schedulers (get_scheduler / get_*_schedule_with_warmup /
  get_wsd_schedule) at several settings, edge cases included (no warm-up, warm-up equal to
  the run, a one-step run): the LR multiplier at every step, read from LambdaLR with lr=1.
- swalr.json: torch.optim.swa_utils.SWALR with one swa_lr per group, alone and after a
  LambdaLR warm-up + linear decay, as the PyTorch docs' loop runs it.
- averaging.safetensors: AveragedModel (SWA mean, and EMA with get_ema_multi_avg_fn) after a
  sequence of updates.
- metrics.json: RMSE, MAE (scikit-learn), Pearson and Spearman (scipy.stats), accuracy and
  macro-F1 (scikit-learn) on random predictions with ties and a class never seen.
- adamw.safetensors: 20 steps of torch.optim.AdamW + LambdaLR (warm-up + linear decay) on
  the tiny BERT with a regression head on the pooler output, with layer-wise LR decay groups
  and no weight decay for biases and LayerNorm: the head's initial weights, the loss at every
  step and every parameter at the end.
"""

import json
import pathlib

import torch
from safetensors.torch import load_file, save_file
from torch.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn
from transformers import BertModel, get_scheduler
from transformers.optimization import get_inverse_sqrt_schedule, get_wsd_schedule

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def dummy_optimizer(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def run(scheduler, optimizer, steps):
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def schedules():
    cases = []

    def add(name, kind, warmup, total, extra=None, steps=None):
        opt = dummy_optimizer()
        extra = extra or {}
        if kind == "warmup_stable_decay":
            sched = get_wsd_schedule(opt, num_warmup_steps=warmup, num_training_steps=total, **extra)
        elif kind == "inverse_sqrt":
            # get_scheduler drops scheduler_specific_kwargs for inverse_sqrt, so call it directly.
            sched = get_inverse_sqrt_schedule(opt, num_warmup_steps=warmup, **extra)
        else:
            sched = get_scheduler(
                kind, opt, num_warmup_steps=warmup, num_training_steps=total, scheduler_specific_kwargs=extra
            )
        factors = run(sched, opt, steps or total + 3)
        cases.append({"name": name, "kind": kind, "warmup": warmup, "total": total, "params": extra, "factors": factors})

    add("linear", "linear", 10, 100)
    add("linear, no warm-up", "linear", 0, 50)
    add("linear, warm-up = run", "linear", 20, 20)
    add("linear, one step", "linear", 0, 1)
    add("constant", "constant", 0, 10)
    add("constant with warm-up", "constant_with_warmup", 10, 40)
    add("constant, warm-up = run", "constant_with_warmup", 7, 7)
    add("cosine", "cosine", 10, 100)
    add("cosine 1.5 cycles, no warm-up", "cosine", 0, 60, {"num_cycles": 1.5})
    add("cosine, warm-up = run", "cosine", 30, 30)
    add("cosine, one step", "cosine", 0, 1)
    add("cosine with min lr", "cosine_with_min_lr", 10, 100, {"min_lr_rate": 0.1})
    add("cosine with min lr, no warm-up", "cosine_with_min_lr", 0, 40, {"min_lr_rate": 0.05, "num_cycles": 0.5})
    add("cosine restarts", "cosine_with_restarts", 10, 100, {"num_cycles": 3})
    add("cosine restarts, no warm-up", "cosine_with_restarts", 0, 50, {"num_cycles": 1})
    add("cosine restarts, one step", "cosine_with_restarts", 0, 1, {"num_cycles": 2})
    # get_scheduler passes the optimizer's lr (1.0) as lr_init, so lr_end is a ratio here.
    add("polynomial", "polynomial", 10, 100, {"power": 2.0, "lr_end": 0.1})
    add("polynomial, no warm-up", "polynomial", 0, 50, {"power": 1.0, "lr_end": 1e-7})
    add("polynomial, short", "polynomial", 5, 6, {"power": 0.5, "lr_end": 0.01})
    add("polynomial, one step", "polynomial", 0, 1, {"power": 1.0, "lr_end": 0.0})
    add("inverse sqrt", "inverse_sqrt", 10, 100)
    add("inverse sqrt, no warm-up", "inverse_sqrt", 0, 50)
    add("inverse sqrt, timescale", "inverse_sqrt", 5, 30, {"timescale": 20})
    add("wsd cosine", "warmup_stable_decay", 10, 100, {"num_decay_steps": 30, "decay_type": "cosine"})
    add("wsd linear, min ratio, no warm-up", "warmup_stable_decay", 0, 50,
        {"num_decay_steps": 20, "decay_type": "linear", "min_lr_ratio": 0.1})
    add("wsd 1-sqrt, min ratio", "warmup_stable_decay", 5, 40,
        {"num_decay_steps": 10, "decay_type": "1-sqrt", "min_lr_ratio": 0.2})
    add("wsd, warm-up = run", "warmup_stable_decay", 12, 12, {"num_decay_steps": 0})
    (FIXTURES / "schedules.json").write_text(json.dumps(cases, indent=1) + "\n")


def swalr():
    base = [5e-4, 1e-3, 2e-3]
    swa = [1e-4, 3e-5, 2e-6]
    cases = []
    for anneal_epochs, strategy in [(5, "cos"), (3, "linear"), (0, "cos"), (1, "linear")]:
        opt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in base])
        sched = SWALR(opt, swa_lr=swa, anneal_epochs=anneal_epochs, anneal_strategy=strategy)
        lrs = []
        for _ in range(10):
            lrs.append([g["lr"] for g in opt.param_groups])
            opt.step()
            sched.step()
        cases.append({"anneal_epochs": anneal_epochs, "strategy": strategy, "base": base, "swa_lr": swa, "lrs": lrs})

    # The loop of the PyTorch docs, per optimizer step: warm-up + linear decay until the SWA
    # start, then SWALR. Groups as LLRD with top_lr=1e-3, decay=0.5 over one layer, head 2e-3.
    warmup, total, start, anneal = 3, 20, 12, 4
    opt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in base])
    main = get_scheduler("linear", opt, num_warmup_steps=warmup, num_training_steps=total)
    swa_sched = SWALR(opt, swa_lr=swa, anneal_epochs=anneal, anneal_strategy="cos")
    lrs = []
    for step in range(total):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        if step >= start:
            swa_sched.step()
        else:
            main.step()
    combined = {"warmup": warmup, "total": total, "start": start, "anneal_epochs": anneal, "base": base, "swa_lr": swa, "lrs": lrs}
    (FIXTURES / "swalr.json").write_text(json.dumps({"swalr": cases, "combined": combined}, indent=1) + "\n")


def averaging():
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    names = [n for n, _ in model.named_parameters()]
    swa = AveragedModel(model)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    tensors = {}
    for i in range(6):
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(torch.randn_like(p) * (i + 1))
                tensors[f"state.{i}.{n}"] = p.detach().clone()
        swa.update_parameters(model)
        ema.update_parameters(model)
    for n, p in swa.module.named_parameters():
        tensors[f"swa.{n}"] = p.detach().clone()
    for n, p in ema.module.named_parameters():
        tensors[f"ema.{n}"] = p.detach().clone()
    assert len(names) == 4
    save_file(tensors, FIXTURES / "averaging.safetensors")


def adamw():
    torch.manual_seed(5)
    encoder = BertModel.from_pretrained(FIXTURES / "tiny_bert").eval()
    head = torch.nn.Linear(32, 1)
    initial_head = {"head.weight": head.weight.detach().clone(), "head.bias": head.bias.detach().clone()}
    batch = load_file(FIXTURES / "tiny_bert.safetensors")
    targets = torch.tensor([0.5, -1.0, 2.0])

    top_lr, decay, head_lr, wd = 1e-3, 0.8, 2e-3, 0.01
    layers = encoder.config.num_hidden_layers
    named = [(n, p) for n, p in encoder.named_parameters()] + [(f"head.{n}", p) for n, p in head.named_parameters()]

    def lr_of(name):
        if name.startswith("pooler.") or name.startswith("head."):
            return head_lr
        if name.startswith("embeddings."):
            return top_lr * decay**layers
        layer = int(name.split(".")[2])
        return top_lr * decay ** (layers - 1 - layer)

    groups = {}
    for n, p in named:
        no_decay = "bias" in n or "LayerNorm" in n
        key = (lr_of(n), 0.0 if no_decay else wd)
        groups.setdefault(key, []).append(p)
    param_groups = [{"params": ps, "lr": lr, "weight_decay": w} for (lr, w), ps in groups.items()]
    assert len(param_groups) >= 6
    opt = torch.optim.AdamW(param_groups, betas=(0.9, 0.999), eps=1e-8)
    sched = get_scheduler("linear", opt, num_warmup_steps=5, num_training_steps=20)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        out = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"])
        pred = head(out.pooler_output).squeeze(-1)
        loss = torch.nn.functional.mse_loss(pred, targets)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    tensors = {f"init.{k}": v for k, v in initial_head.items()}
    tensors["targets"] = targets
    tensors["losses"] = torch.tensor(losses, dtype=torch.float64)
    for n, p in named:
        tensors[f"final.{n}"] = p.detach().clone()
    save_file({k: v.contiguous() for k, v in tensors.items()}, FIXTURES / "adamw.safetensors")
    (FIXTURES / "adamw.json").write_text(
        json.dumps({"top_lr": top_lr, "decay": decay, "head_lr": head_lr, "weight_decay": wd,
                    "warmup": 5, "total": 20, "groups": len(param_groups)}, indent=1) + "\n"
    )


def metrics():
    import numpy as np
    from scipy import stats
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error

    rng = np.random.default_rng(7)
    cases = []
    for n in (5, 50, 400):
        targets = np.round(rng.normal(0, 2, n), 1)  # rounding makes ties
        predictions = np.round(targets * 0.6 + rng.normal(0, 1, n), 1)
        cases.append({
            "predictions": predictions.tolist(),
            "targets": targets.tolist(),
            "rmse": float(np.sqrt(mean_squared_error(targets, predictions))),
            "mae": float(mean_absolute_error(targets, predictions)),
            "pearson": float(stats.pearsonr(predictions, targets).statistic),
            "spearman": float(stats.spearmanr(predictions, targets).statistic),
        })
    classes = []
    for n, k in ((20, 3), (300, 4)):
        truth = rng.integers(0, k - 1, n)  # the last class never occurs
        predicted = np.where(rng.random(n) < 0.7, truth, rng.integers(0, k - 1, n))
        classes.append({
            "predicted": predicted.tolist(),
            "truth": truth.tolist(),
            "classes": k,
            "accuracy": float(accuracy_score(truth, predicted)),
            "macro_f1": float(f1_score(truth, predicted, average="macro", labels=list(range(k)), zero_division=0)),
        })
    (FIXTURES / "metrics.json").write_text(json.dumps({"regression": cases, "classification": classes}, indent=1) + "\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    schedules()
    swalr()
    averaging()
    adamw()
    metrics()
    print(f"wrote technique fixtures to {FIXTURES}")
