#!/usr/bin/env bash
# The GPU check: one short script for a machine with a GPU, PyTorch (CUDA) and transformers in
# its python3, and no Rust and no network. Carry the CUDA build of tunelab (`make setup-cuda`,
# then `cargo build --release`), models/all-MiniLM-L6-v2/{config,tokenizer}.json,
# models/all-mpnet-base-v2/{config,tokenizer}.json and data/vader-movies/; then:
#
#   bash scripts/gpu_check.sh            (writes $OUT/gpu_check.md, or gpu-check/ without OUT)
#
# 1. CUDA against CPU on the tiny test model: the dev RMSE after each of 4 steps, fp32 within
#    1e-4 (relative) and bf16 within 2e-2 of the CPU's fp32;
# 2. the full recipe (LLRD, warm-up, re-init, SWA, evaluation every 20 steps) on MiniLM- and
#    MPNet-base-shaped models with random weights (built there by transformers from the carried
#    configs), fp32 and bf16, batches of 32 and 128: samples/s, peak GPU memory
#    (nvidia-smi, sampled every 100 ms) and MFU (6 × non-embedding parameters × tokens/s over the
#    GPU's dense bf16 peak, --peak-tflops, 989 for an H100/H200 SXM);
# 3. scripts/reference/train_reference.py (PyTorch eager, then torch.compile) on the same model,
#    data and batches, alternating with tunelab, and the ratios; compiled only at the largest
#    batch (compilation takes a minute a run). The compiled run's samples/s include its
#    compilation (and recompilations for new batch shapes): read it as a lower bound.
#
# Without a GPU it says so and runs the same steps on the CPU at toy sizes (a test of the script,
# not a measurement).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
python=${PYTHON:-python3}
bin=${TUNELAB:-target/release/tunelab}
peak_tflops=${PEAK_TFLOPS:-989}
say() { printf 'gpu-check: %s\n' "$*" >&2; }

torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH=$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [ "$("$python" -c 'import torch; print(int(torch.cuda.is_available()))')" = 1 ]; then
  device=cuda steps=60 batches="32 128" variants=(eager compile) dev_limit=256
  say "GPU: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader)"
else
  device=cpu steps=3 batches="8" variants=(eager) dev_limit=16
  say "no GPU visible: the same steps on the CPU at toy sizes, torch.compile left out (minutes of C++ compilation on a CPU): this checks the script, it measures nothing"
fi
report=$out/gpu_check.md
: > "$report"

# The spec of a run: model, data, precision, batch, steps, folder.
spec() {
  "$python" - "$@" <<'PY'
import json, sys
model, train, dev, precision, batch, steps, device, full, dev_limit = sys.argv[1:10]
batch, steps, dev_limit = int(batch), int(steps), int(dev_limit)
recipe = {"lr": {"kind": "uniform", "lr": 1e-3}, "evaluation": {"every": 1}}
if full == "1":
    recipe = {
        "lr": {"kind": "llrd", "top_lr": 1e-4, "decay": 0.9, "head_lr": 5e-4},
        "warmup": 0.15, "decay": "linear",
        "reinit": {"top_layers": 1, "pooler": True},
        "swa": {"start": 0.75, "lr": {"scale": 0.5}, "anneal_steps": 5},
        "evaluation": {"every": 20},
    }
print(json.dumps({
    "model": model, "pooling": "pooler",
    "data": {"train": train, "dev": dev, "columns": {"text": "text", "label": "score"}, "kind": "regression",
             "train_limit": batch * steps, "dev_limit": dev_limit, "subset": {"kind": "first"}},
    "recipe": recipe,
    "training": {"epochs": 1, "batch_size": batch, "max_length": 64, "shuffle": False, "seed": 3,
                 "device": device, "precision": precision, "keep": "best"},
}))
PY
}

# 1. CUDA against CPU, on the tiny model.
tiny=tests/fixtures/tiny_bert
sample=tests/fixtures/vader-sample
for run in cpu-fp32:cpu:fp32 dev-fp32:$device:fp32 dev-bf16:$device:bf16; do
  IFS=: read -r name dev precision <<< "$run"
  spec "$tiny" "$sample/train.tsv" "$sample/dev.tsv" "$precision" 16 4 "$dev" 0 256 > "$out/tiny-$name.json"
  "$bin" train "$out/tiny-$name.json" --out "$out/tiny-$name" --force --quiet > /dev/null
done
"$python" - "$out" "$device" >> "$report" <<'PY'
import json, sys
out, device = sys.argv[1:3]
rmse = lambda name: [json.loads(l)["metrics"]["rmse"] for l in open(f"{out}/tiny-{name}/eval.jsonl") if json.loads(l)["weights"] == "model"]
cpu = rmse("cpu-fp32")
print(f"## 1. {device} against the CPU (tiny model, dev RMSE after each of 4 steps)\n")
ok = True
for name, tol in (("dev-fp32", 1e-4), ("dev-bf16", 2e-2)):
    other = rmse(name)
    worst = max(abs(a - b) / abs(a) for a, b in zip(cpu, other))
    ok &= worst <= tol
    print(f"- {name.replace('dev', device)}: {', '.join(f'{x:.6f}' for x in other)} (CPU fp32 {', '.join(f'{x:.6f}' for x in cpu)}): largest relative difference {worst:.2e}, limit {tol:g}: {'ok' if worst <= tol else 'FAILED'}")
print()
open(f"{out}/step1.status", "w").write("ok" if ok else "failed")
PY
say "step 1: $(cat "$out/step1.status")"

# 2 and 3. Speed on MiniLM- and MPNet-shaped models with random weights (transformers' own
# initialisation).
trap 'jobs -p | xargs -r kill 2>/dev/null || true' EXIT
gpu_memory() { if [ "$device" = cuda ]; then nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$1" & echo $!; else echo; fi; }
# Peak GPU memory of each process, as nvidia-smi sees it (the CUDA context included, for both).
measure() {
  local sampler peak
  sampler=$(gpu_memory "$out/memory.log")
  "$@"
  if [ -n "$sampler" ]; then kill "$sampler"; peak=$(sort -n "$out/memory.log" | tail -1); fi
  echo "${peak:-nan}" > "$out/peak"
}
largest=${batches##* }
for model in ${MODELS:-all-MiniLM-L6-v2 all-mpnet-base-v2}; do
  shape=$out/$model-random
  "$python" - "models/$model" "$shape" <<'PY'
import shutil, sys
from transformers import AutoConfig, AutoModel
src, dst = sys.argv[1:3]
AutoModel.from_config(AutoConfig.from_pretrained(src)).save_pretrained(dst, safe_serialization=True)
shutil.copy(f"{src}/tokenizer.json", dst)
for name in ("tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
    try:
        shutil.copy(f"{src}/{name}", dst)
    except FileNotFoundError:
        pass
PY
  results=$out/speed-$model.jsonl
  : > "$results"
  for precision in fp32 bf16; do
    for batch in $batches; do
      spec "$shape" data/vader-movies/train.tsv data/vader-movies/dev.tsv "$precision" "$batch" "$steps" "$device" 1 "$dev_limit" > "$out/speed.json"
      measure "$bin" train "$out/speed.json" --out "$out/speed-run" --force --quiet > /dev/null
      "$python" -c "import json; m=json.load(open('$out/speed-run/metrics.json')); print(json.dumps({'who':'tunelab','precision':'$precision','batch':$batch,'samples':m['train_samples_per_second'],'tokens':m['train_tokens_per_second'],'peak_mib':float(open('$out/peak').read())}))" >> "$results"
      for variant in "${variants[@]}"; do
        [ "$variant" = compile ] && [ "$batch" != "$largest" ] && continue
        compiled=$([ "$variant" = compile ] && echo --compile || true)
        measure "$python" scripts/reference/train_reference.py --model "$shape" --device "$device" --precision "$precision" --batch-size "$batch" \
          --max-steps "$steps" --train-limit $((batch * steps)) --dev-limit "$dev_limit" --eval-every 20 --threads "$(nproc)" $compiled > "$out/reference.json"
        "$python" -c "import json; m=json.load(open('$out/reference.json')); print(json.dumps({'who':'pytorch${compiled:+ compile}','precision':'$precision','batch':$batch,'samples':m['train_samples_per_second'],'tokens':m['train_tokens_per_second'],'peak_mib':float(open('$out/peak').read())}))" >> "$results"
      done
      say "$model, $precision, batch $batch done"
    done
  done
  "$python" - "$results" "$shape/config.json" "$peak_tflops" "$device" "$model" >> "$report" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cfg = json.load(open(sys.argv[2]))
h, i, n = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
params = n * (4 * h * h + 2 * h * i) + h * h  # the encoder's matrices and the pooler
peak = float(sys.argv[3]) * 1e12
print(f"## 2–3. Full recipe, {sys.argv[5]}-shaped ({params / 1e6:.1f}M non-embedding parameters), {sys.argv[4]}\n")
print("| precision | batch | who | samples/s | tokens/s | peak GPU MiB | MFU | tunelab ÷ this |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    ours = next(x for x in rows if x["who"] == "tunelab" and x["precision"] == r["precision"] and x["batch"] == r["batch"])
    mfu = 6 * params * r["tokens"] / peak
    peak_mib = "-" if r["peak_mib"] is None or r["peak_mib"] != r["peak_mib"] else f"{r['peak_mib']:.0f}"
    print(f"| {r['precision']} | {r['batch']} | {r['who']} | {r['samples']:.1f} | {r['tokens']:.0f} | {peak_mib} | {100 * mfu:.2f}% | {ours['samples'] / r['samples']:.2f}× |")
print()
PY
done
cat "$report"
if [ "$(cat "$out/step1.status")" != ok ]; then say "step 1 failed: the GPU's results differ from the CPU's beyond the limits"; exit 1; fi
