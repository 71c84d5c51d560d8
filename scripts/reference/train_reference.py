"""The full recipe written the way PyTorch users write it (as in the seed article), for the
benchmark against tunelab (`scripts/bench.py` runs both).

transformers' AutoModel (BERT-family or MPNet: --model) with a regression head on the pooler output; AdamW with layer-wise LR
decay parameter groups (no weight decay for biases and LayerNorm); get_scheduler("linear") with a
warm-up; the top layer and the pooler re-initialised with the model's own _init_weights;
AveragedModel + SWALR with one swa_lr per group (half of each group's LR); dev RMSE every
`--eval-every` steps and at the end, keeping the best; gradient clipping at 1.0.

--padding dynamic pads each batch to its longest sentence (DataCollatorWithPadding); --padding
max_length pads every batch to --max-length (the seed article). --order file keeps the file
order (the same batches as `tunelab` with shuffle off); --order shuffle uses a seeded DataLoader
shuffle. --device cuda trains on the GPU (times taken after torch.cuda.synchronize), --precision
bf16 runs the forward pass and the loss under torch.autocast(dtype=bfloat16), --compile wraps the
model in torch.compile. Prints one JSON line with the measurements.
"""

import argparse
import csv
import json
import math
import sys
import time

import torch
from torch.optim.swa_utils import SWALR, AveragedModel
from transformers import AutoModel, AutoTokenizer, get_scheduler


def read(path, limit):
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            rows.append((row["text"], float(row["score"])))
            if limit and len(rows) >= limit:
                break
    return rows


class Regressor(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(encoder.config.hidden_dropout_prob)
        self.head = torch.nn.Linear(encoder.config.hidden_size, 1)
        torch.nn.init.normal_(self.head.weight, std=encoder.config.initializer_range)
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, input_ids, attention_mask, token_type_ids):
        types = {} if self.encoder.config.model_type == "mpnet" else {"token_type_ids": token_type_ids}
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **types)
        return self.head(self.dropout(out.pooler_output)).squeeze(-1)


def batches(encoded, order, batch_size, seed, epoch):
    index = list(range(len(encoded)))
    if order == "shuffle":
        g = torch.Generator().manual_seed(seed + epoch)
        index = torch.randperm(len(encoded), generator=g).tolist()
    return [index[i : i + batch_size] for i in range(0, len(index), batch_size)]


def collate(encoded, idx, padding, max_length, pad_id):
    rows = [encoded[i] for i in idx]
    length = max_length if padding == "max_length" else max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for r, (tokens, _) in enumerate(rows):
        ids[r, : len(tokens)] = torch.tensor(tokens)
        mask[r, : len(tokens)] = 1
    labels = torch.tensor([label for _, label in rows], dtype=torch.float32)
    return ids, mask, torch.zeros_like(ids), labels


def evaluate(model, encoded, max_length, pad_id, device="cpu", autocast=None):
    model.eval()
    se, n = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(encoded), 128):
            ids, mask, types, labels = (t.to(device) for t in collate(encoded, list(range(start, min(start + 128, len(encoded)))), "dynamic", max_length, pad_id))
            with autocast():
                pred = model(ids, mask, types).float()
            se += float(((pred - labels) ** 2).sum())
            n += len(labels)
    model.train()
    return math.sqrt(se / n)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="models/all-MiniLM-L6-v2")
    p.add_argument("--train", default="data/vader-movies/train.tsv")
    p.add_argument("--dev", default="data/vader-movies/dev.tsv")
    p.add_argument("--train-limit", type=int, default=2000)
    p.add_argument("--dev-limit", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--padding", choices=["dynamic", "max_length"], default="dynamic")
    p.add_argument("--order", choices=["file", "shuffle"], default="file")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--max-steps", type=int, default=0)
    a = p.parse_args()
    device = torch.device(a.device)
    gpu = device.type == "cuda"
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    tok = AutoTokenizer.from_pretrained(a.model)
    train_rows, dev_rows = read(a.train, a.train_limit), read(a.dev, a.dev_limit)
    enc = lambda rows: [(tok(t, truncation=True, max_length=a.max_length)["input_ids"], y) for t, y in rows]
    train, dev = enc(train_rows), enc(dev_rows)
    pad_id = tok.pad_token_id

    try:
        encoder = AutoModel.from_pretrained(a.model, attn_implementation="sdpa")
    except ValueError:  # MPNet has no SDPA attention in transformers: its eager one
        encoder = AutoModel.from_pretrained(a.model)
    model = Regressor(encoder).to(device)
    cfg = model.encoder.config
    layers = cfg.num_hidden_layers
    # Re-initialise the top layer and the pooler (transformers' own _init_weights).
    for module in list(model.encoder.encoder.layer[-1].modules()) + list(model.encoder.pooler.modules()):
        model.encoder._init_weights(module)

    top_lr, decay, head_lr, wd = 1e-4, 0.9, 5e-4, 0.01

    def lr_of(name):
        if name.startswith(("encoder.pooler.", "head.")):
            return head_lr
        if name.startswith("encoder.embeddings.") or "relative_attention_bias" in name:
            return top_lr * decay**layers
        return top_lr * decay ** (layers - 1 - int(name.split(".")[3]))

    groups = {}
    for name, param in model.named_parameters():
        no_decay = "bias" in name or "LayerNorm" in name
        groups.setdefault((lr_of(name), 0.0 if no_decay else wd), []).append(param)
    param_groups = [{"params": ps, "lr": lr, "weight_decay": w} for (lr, w), ps in groups.items()]
    optimizer = torch.optim.AdamW(param_groups)

    steps_per_epoch = math.ceil(len(train) / a.batch_size)
    total = a.epochs * steps_per_epoch
    if a.max_steps:
        total = min(total, a.max_steps)
    warmup = math.ceil(0.15 * total)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=warmup, num_training_steps=total)
    swa_start = math.floor(0.75 * total)
    swa_model = AveragedModel(model)
    swa_scheduler = SWALR(optimizer, swa_lr=[g["lr"] * 0.5 for g in param_groups], anneal_epochs=5, anneal_strategy="cos")

    forward = torch.compile(model) if a.compile else model
    if gpu:
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    step, train_seconds, samples, tokens, best = 0, 0.0, 0, 0, float("inf")
    swa_seconds = 0.0
    for epoch in range(a.epochs):
        for idx in batches(train, a.order, a.batch_size, a.seed, epoch):
            if step == total:
                break
            sync()
            tick = time.perf_counter()
            ids, mask, types, labels = (t.to(device, non_blocking=True) for t in collate(train, idx, a.padding, a.max_length, pad_id))
            optimizer.zero_grad()
            with autocast():
                loss = torch.nn.functional.mse_loss(forward(ids, mask, types).float(), labels)
            if not torch.isfinite(loss):
                sys.exit(f"non-finite loss at step {step}")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if step >= swa_start:
                s = time.perf_counter()
                swa_model.update_parameters(model)
                swa_seconds += time.perf_counter() - s
                swa_scheduler.step()
            else:
                scheduler.step()
            step += 1
            samples += len(idx)
            tokens += sum(len(train[i][0]) for i in idx)
            sync()
            train_seconds += time.perf_counter() - tick
            if step % a.eval_every == 0 or step == total:
                best = min(best, evaluate(model, dev, a.max_length, pad_id, device, autocast))
    swa_rmse = evaluate(swa_model.module, dev, a.max_length, pad_id, device, autocast)
    print(json.dumps({
        "steps": step,
        "train_samples_per_second": samples / train_seconds,
        "train_tokens_per_second": tokens / train_seconds,
        "train_seconds": train_seconds,
        "swa_seconds": swa_seconds,
        "best_rmse": best,
        "swa_rmse": swa_rmse,
        "peak_gpu_mib": torch.cuda.max_memory_allocated(device) / 2**20 if gpu else None,
    }))


if __name__ == "__main__":
    main()
