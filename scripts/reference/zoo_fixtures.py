"""Golden values for the fine-tuning literature's techniques beyond the seed article (issue 22),
each implemented here from its paper with plain PyTorch, on the tiny BERT of tests/fixtures.

Run with `make reference-venv && .venv-ref/bin/python scripts/reference/zoo_fixtures.py`.
Writes tests/fixtures/zoo.safetensors (per case: the head's initial weights, the loss at every
step, every parameter at the end) and tests/fixtures/zoo.json (each case's settings), which
tests/zoo_golden.rs reads.

Every case trains the encoder and a linear head on the pooler output for 8 optimizer steps on the
fixture batch, dropout off, one LR for every parameter (1e-3) with 2 warm-up steps and linear
decay (transformers' get_scheduler), weight decay on everything but biases and LayerNorm:

- huber: the regression loss is F.huber_loss(delta=0.5).
- mae: the regression loss is F.l1_loss.
- cross_entropy: three classes, F.cross_entropy(weight=[1.0, 2.0, 0.5], label_smoothing=0.1).
- bert_adam: the original BERT optimizer (Devlin et al. 2019, `optimization.py`'s
  AdamWeightDecay; Zhang et al. 2021 §3), Adam *without bias correction*:
  m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr (m / (sqrt(v) + eps) + wd p).
- pretrained_decay: weight decay towards the pre-trained weights instead of towards 0 (Zhang
  et al. 2021 §5, after Chen et al. 2020's RecAdam): p -= lr wd (p - p0) for every decayed
  parameter of the pre-trained encoder (the new head decays towards 0 as usual), then AdamW's
  update with its own weight decay off. wd is 5.0 here so that the two decays differ visibly.
- freeze: the embeddings and layer 0 frozen (requires_grad False: no gradient, and AdamW keeps
  no state for them), then gradually unfrozen (ULMFiT, Howard & Ruder 2018) from the top: layer 0
  at step 3, the embeddings at step 6.
- head_attention: attention pooling, as the CommonLit solutions write it: a learned query q
  scores each token state, softmax(H q) over the real tokens (padding at -inf) weighs them.
- head_weighted_layers: the first-token states of the top 2 layers (output_hidden_states),
  weighted by softmax(w) with w learned (starting at [0.3, -0.2], top layer first; no weight
  decay on w).
- head_concat: the first-token states of the top 2 layers concatenated (top layer first), a
  linear layer on 64 numbers.
- fgm: adversarial training on the word embeddings (Miyato et al. 2017, FGM as the Kaggle
  solutions write it), from step 2: after the backward pass, the word embedding table moves by
  epsilon g / ||g|| (epsilon 0.5), a second forward/backward adds its gradient, the table is
  restored, then the optimizer steps.
- awp: adversarial weight perturbation (Wu et al. 2020, the Feedback Prize solutions' AWP class),
  from step 2: every parameter with "weight" in its name and a gradient moves by
  lr g / (||g|| + 1e-6) (||p|| + 1e-6) (lr 0.5), clamped to p +- eps |p| (eps 0.01); the gradient
  is zeroed, the perturbed model's loss is back-propagated (the step's gradient is that one
  alone, as that class does), the weights are restored, then the optimizer steps.
- mixout: Mixout (Lee, Cho & Kang 2020) with p 0.3 on every dense layer's weight (the encoder's,
  the pooler's and the head's), towards its value before fine-tuning, dropout off as the
  authors' code sets it: each step draws M ~ Bernoulli(1 - p) per weight and the forward pass
  uses ((1 - M) W0 + M W - p W0) / (1 - p) (torch.func.functional_call, so autograd gives W's
  gradient). tunelab seeds each step with manual_seed(seed * 1000003 + step) (seed 42) and draws
  the masks in model order, so this script does the same and the masks are the same bits.
"""

import json
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import BertModel, get_scheduler

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
STEPS, WARMUP, LR, WD = 8, 2, 1e-3, 0.01


class BertAdam(torch.optim.Optimizer):
    """Adam without bias correction, weight decay added to the update (BERT's AdamWeightDecay)."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                m, v = state["m"], state["v"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                update = m / (v.sqrt() + group["eps"])
                if group["weight_decay"] > 0:
                    update = update + group["weight_decay"] * p
                p.add_(update, alpha=-group["lr"])


class Head(torch.nn.Module):
    """A linear layer on a pooling: the pooler output, or one of the three heads above."""

    def __init__(self, pooling, classes, layers=2):
        super().__init__()
        self.pooling, self.layers = pooling, layers
        width = 32 * layers if pooling == "concat" else 32
        self.linear = torch.nn.Linear(width, classes)
        if pooling == "attention":
            self.attention_query = torch.nn.Parameter(torch.randn(32) * 0.02)
        if pooling == "weighted_layers":
            self.layer_weights = torch.nn.Parameter(torch.tensor([0.3, -0.2]))

    def named(self):
        out = [("head.weight", self.linear.weight), ("head.bias", self.linear.bias)]
        out += [(f"head.{n}", p) for n, p in self.named_parameters() if not n.startswith("linear.")]
        return out

    def forward(self, out, mask):
        if self.pooling == "pooler":
            pooled = out.pooler_output
        elif self.pooling == "attention":
            h = out.last_hidden_state
            scores = (h @ self.attention_query).masked_fill(mask == 0, float("-inf"))
            pooled = (h * torch.softmax(scores, dim=-1).unsqueeze(-1)).sum(1)
        else:
            top = [out.hidden_states[-1 - i][:, 0] for i in range(self.layers)]
            if self.pooling == "concat":
                pooled = torch.cat(top, dim=-1)
            else:
                w = torch.softmax(self.layer_weights, dim=0)
                pooled = sum(w[i] * top[i] for i in range(self.layers))
        return self.linear(pooled)


class FGM:
    def __init__(self, named, epsilon):
        self.named, self.epsilon, self.backup = named, epsilon, {}

    def attack(self):
        for n, p in self.named:
            if p.requires_grad and p.grad is not None and n == "embeddings.word_embeddings.weight":
                self.backup[n] = p.data.clone()
                norm = torch.norm(p.grad)
                if norm != 0 and not torch.isnan(norm):
                    p.data.add_(self.epsilon * p.grad / norm)

    def restore(self):
        for n, p in self.named:
            if n in self.backup:
                p.data = self.backup[n]
        self.backup = {}


class AWP:
    def __init__(self, named, lr, eps):
        self.named, self.lr, self.eps, self.backup, self.backup_eps = named, lr, eps, {}, {}

    def attack(self):
        e = 1e-6
        for n, p in self.named:
            if p.requires_grad and p.grad is not None and "weight" in n:
                self.backup[n] = p.data.clone()
                grad_eps = self.eps * p.abs().detach()
                self.backup_eps[n] = (self.backup[n] - grad_eps, self.backup[n] + grad_eps)
        for n, p in self.named:
            if n in self.backup:
                norm1, norm2 = torch.norm(p.grad), torch.norm(p.data.detach())
                if norm1 != 0 and not torch.isnan(norm1):
                    p.data.add_(self.lr * p.grad / (norm1 + e) * (norm2 + e))
                    p.data = torch.min(torch.max(p.data, self.backup_eps[n][0]), self.backup_eps[n][1])

    def restore(self):
        for n, p in self.named:
            if n in self.backup:
                p.data = self.backup[n]
        self.backup, self.backup_eps = {}, {}


def dense_weights(named):
    """The dense layers' weights in model order (what Mixout mixes)."""
    order = []
    layers = sorted({int(n.split(".")[2]) for n, _ in named if n.startswith("encoder.layer.")})
    for i in layers:
        for part in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "intermediate.dense", "output.dense"]:
            order.append(f"encoder.layer.{i}.{part}.weight")
    return order + ["pooler.dense.weight", "head.weight"]


def case(name, *, classes=1, loss_fn, optimizer="adamw", wd=WD, frozen=None, pooling="pooler", adversarial=None, mixout=None):
    torch.manual_seed(11)
    encoder = BertModel.from_pretrained(FIXTURES / "tiny_bert").eval()
    head = Head(pooling, classes)
    tensors = {f"{name}.init.{n}": p.detach().clone() for n, p in head.named()}
    batch = load_file(FIXTURES / "tiny_bert.safetensors")
    targets = torch.tensor([0.5, -1.0, 2.0]) if classes == 1 else torch.tensor([0, 2, 1])
    named = [(n, p) for n, p in encoder.named_parameters()] + head.named()
    decayed = lambda n: not ("bias" in n or "LayerNorm" in n or n == "head.layer_weights")
    anchors = {n: p.detach().clone() for n, p in named if decayed(n) and not n.startswith("head.")}
    targets0 = {n: p.detach().clone() for n, p in named}
    # The pre-trained decay is applied by hand, so AdamW's own is off for those parameters.
    own_wd = lambda n: 0.0 if (optimizer == "pretrained_decay" and n in anchors) or not decayed(n) else wd
    groups = {}
    for n, p in named:
        groups.setdefault(own_wd(n), []).append(p)
    param_groups = [{"params": ps, "lr": LR, "weight_decay": w} for w, ps in groups.items()]
    opt = BertAdam(param_groups, lr=LR) if optimizer == "bert_adam" else torch.optim.AdamW(param_groups, betas=(0.9, 0.999), eps=1e-8)
    sched = get_scheduler("linear", opt, num_warmup_steps=WARMUP, num_training_steps=STEPS)

    def block(n):
        if n.startswith("embeddings."):
            return "embeddings"
        if n.startswith("encoder.layer."):
            return "layer." + n.split(".")[2]
        return None

    losses = []
    for step in range(STEPS):
        if frozen is not None:
            for n, p in named:
                p.requires_grad_(step >= frozen.get(block(n), 0))
        opt.zero_grad(set_to_none=True)
        mixed = {}
        if mixout is not None:
            torch.manual_seed(42 * 1000003 + step)
            params = dict(named)
            for n in dense_weights(named):
                w, w0 = params[n], targets0[n]
                mask = torch.empty_like(w).bernoulli_(1 - mixout)
                mixed[n] = ((1 - mask) * w0 + mask * w - mixout * w0) / (1 - mixout)

        def forward():
            enc = {n: t for n, t in mixed.items() if not n.startswith("head.")}
            inputs = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"], output_hidden_states=True)
            out = torch.func.functional_call(encoder, enc, args=(), kwargs=inputs) if enc else encoder(**inputs)
            if "head.weight" in mixed:
                logits = torch.nn.functional.linear(out.pooler_output, mixed["head.weight"], head.linear.bias)
            else:
                logits = head(out, batch["attention_mask"])
            return loss_fn(logits.squeeze(-1) if classes == 1 else logits, targets)

        loss = forward()
        loss.backward()
        if adversarial is not None and step >= 2:
            kind, a, b = adversarial
            attack = FGM(named, a) if kind == "fgm" else AWP(named, a, b)
            attack.attack()
            if kind == "awp":
                opt.zero_grad(set_to_none=False)
            forward().backward()
            attack.restore()
        if optimizer == "pretrained_decay":
            lr = opt.param_groups[0]["lr"]
            with torch.no_grad():
                for n, p in named:
                    if n in anchors and p.grad is not None:
                        p.sub_(lr * wd * (p - anchors[n]))
        opt.step()
        sched.step()
        losses.append(loss.item())
    tensors[f"{name}.targets"] = targets.to(torch.float32)
    tensors[f"{name}.losses"] = torch.tensor(losses, dtype=torch.float64)
    for n, p in named:
        tensors[f"{name}.final.{n}"] = p.detach().clone()
    return tensors


if __name__ == "__main__":
    torch.set_num_threads(1)
    cases = {
        "huber": dict(loss_fn=lambda p, t: F.huber_loss(p, t, delta=0.5)),
        "mae": dict(loss_fn=F.l1_loss),
        "cross_entropy": dict(classes=3, loss_fn=lambda p, t: F.cross_entropy(p, t, weight=torch.tensor([1.0, 2.0, 0.5]), label_smoothing=0.1)),
        "bert_adam": dict(loss_fn=F.mse_loss, optimizer="bert_adam"),
        "pretrained_decay": dict(loss_fn=F.mse_loss, optimizer="pretrained_decay", wd=5.0),
        "freeze": dict(loss_fn=F.mse_loss, frozen={"embeddings": 6, "layer.0": 3}),
        "head_attention": dict(loss_fn=F.mse_loss, pooling="attention"),
        "head_weighted_layers": dict(loss_fn=F.mse_loss, pooling="weighted_layers"),
        "head_concat": dict(loss_fn=F.mse_loss, pooling="concat"),
        "fgm": dict(loss_fn=F.mse_loss, adversarial=("fgm", 0.5, None)),
        "awp": dict(loss_fn=F.mse_loss, adversarial=("awp", 0.5, 0.01)),
        "mixout": dict(loss_fn=F.mse_loss, mixout=0.3),
    }
    tensors = {}
    for name, kw in cases.items():
        tensors.update(case(name, **kw))
    save_file({k: v.contiguous() for k, v in tensors.items()}, FIXTURES / "zoo.safetensors")
    meta = {"steps": STEPS, "warmup": WARMUP, "lr": LR, "weight_decay": WD, "pretrained_decay_weight_decay": 5.0,
            "huber_delta": 0.5, "class_weights": [1.0, 2.0, 0.5], "label_smoothing": 0.1,
            "freeze": {"embeddings": True, "bottom_layers": 1, "unfreeze_every": 3}}
    (FIXTURES / "zoo.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {FIXTURES / 'zoo.safetensors'}")
