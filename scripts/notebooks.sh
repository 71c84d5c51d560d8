#!/usr/bin/env bash
# The notebooks and their two kernels, both registered inside .venv (never in your user-wide
# Jupyter folder, so a Rust kernel of your own keeps its own settings):
#
#   tunelab-rhai  "tunelab (rhai)": tunelab's own language, cells run at once by the release
#                 binary (`tunelab kernel`). Notebook 05.
#   tunelab-rust  "Rust (tunelab, evcxr)": cells are Rust compiled by evcxr against the
#                 library. Notebooks 01-04.
#
#   scripts/notebooks.sh            installs what is missing, then starts JupyterLab on notebooks/
#   scripts/notebooks.sh --setup    only installs (the kernels, JupyterLab, evcxr's compiled cache)
#   scripts/notebooks.sh --execute  runs every notebook headlessly into target/notebooks/ and fails
#                                   on any cell error, a missing plot or an absolute path
#   scripts/notebooks.sh --update   runs every notebook in place: notebooks/ are committed with
#                                   their outputs, so that a reader sees the plots without running
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=${1:-lab}

say() { printf 'notebooks: %s\n' "$*"; }

if ! command -v evcxr_jupyter >/dev/null; then
  say "installing evcxr_jupyter (a few minutes, once)"
  cargo install --locked evcxr_jupyter@^0.22
fi
if [ ! -x .venv/bin/jupyter-nbconvert ] || [ ! -x .venv/bin/jupyter-lab ]; then
  say "installing JupyterLab into .venv"
  .venv/bin/python -m pip install --quiet jupyterlab==4.6.6 nbconvert==7.17.2 nbclient==0.11.0 jupyter_client==8.6.3
fi

# 1. The rhai kernel: a binary built with the `kernel` feature, copied into .venv/bin (a later
#    plain `cargo build` replaces target/release/tunelab with one without the kernel).
say "building the rhai kernel"
cargo build --release --quiet --features kernel
install -m 755 target/release/tunelab .venv/bin/tunelab
.venv/bin/tunelab kernel --install --prefix .venv --name tunelab-rhai >/dev/null

# 2. The Rust kernel: evcxr compiles each cell against tunelab, so it needs LIBTORCH to build
#    torch-sys, LD_LIBRARY_PATH to load libtorch (the rpath tunelab's build.rs writes does not
#    reach the code evcxr compiles), and a fixed EVCXR_TMPDIR so that sessions reuse the crates
#    compiled once.
torch=$(readlink -f .venv/libtorch)
libs="$torch/lib"
for d in "$torch"/../nvidia/*/lib; do [ -d "$d" ] && libs="$libs:$(readlink -f "$d")"; done
spec_dir=.venv/share/jupyter/kernels/tunelab-rust
mkdir -p "$spec_dir"
.venv/bin/python - "$spec_dir/kernel.json" "$(command -v evcxr_jupyter)" "$torch" "$libs" "$root/target/evcxr" <<'PY'
import json, sys
path, evcxr, torch, libs, tmp = sys.argv[1:]
spec = {
    "argv": [evcxr, "--control_file", "{connection_file}"],
    "display_name": "Rust (tunelab, evcxr)",
    "language": "rust",
    "interrupt_mode": "message",
    "env": {"LIBTORCH": torch, "LD_LIBRARY_PATH": libs, "EVCXR_TMPDIR": tmp, "LIBTORCH_CXX11_ABI": "1"},
}
json.dump(spec, open(path, "w"), indent=1)
PY
mkdir -p target/evcxr

# 3. evcxr's cache, compiled once (tunelab, torch-sys and every dependency: 3.5 to 7 minutes measured on
#    2 cores), so that nobody meets that compile in a notebook. Redone when Cargo.lock changes.
stamp=target/evcxr/.prebuilt-$(sha256sum Cargo.lock | cut -c1-16)
if [ ! -f "$stamp" ]; then
  say "compiling tunelab for the Rust kernel once (3.5 to 7 minutes on 2 cores; later sessions reuse it)"
  start=$(date +%s)
  .venv/bin/python scripts/warm_evcxr.py notebooks/01-schedules.ipynb
  rm -f target/evcxr/.prebuilt-*
  touch "$stamp"
  say "compiled in $(( $(date +%s) - start )) s"
fi

case "$mode" in
  lab) exec .venv/bin/jupyter lab notebooks/ ;;
  --setup) exit 0 ;;
  --execute) out=target/notebooks; mkdir -p "$out" ;;
  --update) out=notebooks ;;
  *) echo "usage: scripts/notebooks.sh [--setup | --execute | --update]" >&2; exit 2 ;;
esac

# Each notebook runs with the kernel its metadata names, from the notebooks' folder (as in Lab).
for nb in notebooks/*.ipynb; do
  say "executing $nb"
  start=$(date +%s)
  .venv/bin/jupyter nbconvert --to notebook --execute "$nb" --output-dir "$out" \
    --ExecutePreprocessor.timeout=1800 >/dev/null
  say "$nb ran in $(( $(date +%s) - start )) s"
done
.venv/bin/python scripts/check_notebooks.py --root "$root" "$out"/*.ipynb
