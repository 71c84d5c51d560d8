#!/usr/bin/env bash
# The notebooks: installs what is missing once (evcxr_jupyter, JupyterLab in .venv), registers
# the Rust kernel with the environment it needs, then
#   scripts/notebooks.sh            starts JupyterLab on notebooks/
#   scripts/notebooks.sh --execute  runs every notebook headlessly into target/notebooks/ and
#                                   fails on any cell error or on a notebook without its plots.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf 'notebooks: %s\n' "$*"; }

if ! command -v evcxr_jupyter >/dev/null; then
  say "installing evcxr_jupyter (a few minutes, once)"
  cargo install --locked evcxr_jupyter@^0.22
fi
if [ ! -x .venv/bin/jupyter-nbconvert ] || [ ! -x .venv/bin/jupyter-lab ]; then
  say "installing JupyterLab into .venv"
  .venv/bin/pip install --quiet jupyterlab==4.6.6 nbconvert==7.17.2 nbclient==0.11.0
fi

# The kernel: evcxr compiles each cell against tunelab, so it needs LIBTORCH to build torch-sys,
# LD_LIBRARY_PATH to load libtorch (the rpath tunelab's build.rs writes does not reach the code
# evcxr compiles), and a fixed EVCXR_TMPDIR so that later sessions reuse the compiled crates.
torch=$(readlink -f .venv/libtorch)
libs="$torch/lib"
for d in "$torch"/../nvidia/*/lib; do [ -d "$d" ] && libs="$libs:$(readlink -f "$d")"; done
evcxr_jupyter --install >/dev/null
kernel=$(.venv/bin/jupyter kernelspec list --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["kernelspecs"]["rust"]["resource_dir"])')
.venv/bin/python - "$kernel/kernel.json" "$torch" "$libs" "$root/target/evcxr" <<'PY'
import json, sys
path, torch, libs, tmp = sys.argv[1:]
spec = json.load(open(path))
spec["env"] = {"LIBTORCH": torch, "LD_LIBRARY_PATH": libs, "EVCXR_TMPDIR": tmp, "LIBTORCH_CXX11_ABI": "1"}
json.dump(spec, open(path, "w"), indent=1)
PY
mkdir -p target/evcxr

if [ "${1:-}" != "--execute" ]; then
  exec .venv/bin/jupyter lab notebooks/
fi

mkdir -p target/notebooks
for nb in notebooks/*.ipynb; do
  say "executing $nb"
  start=$(date +%s)
  .venv/bin/jupyter nbconvert --to notebook --execute "$nb" --output-dir target/notebooks \
    --ExecutePreprocessor.kernel_name=rust --ExecutePreprocessor.timeout=1800 >/dev/null
  say "$nb ran in $(( $(date +%s) - start )) s"
done
.venv/bin/python scripts/check_notebooks.py target/notebooks/*.ipynb
