#!/usr/bin/env bash
# Reruns the paper's experiments at CPU scale and writes the tables and plots.
#
#   scripts/reproduce.sh full    # `make reproduce`: runs/reproduce -> results/       (see README: time per seed)
#   scripts/reproduce.sh smoke   # `make smoke`:     runs/smoke     -> results/smoke/ (minutes)
#
# Every experiment runs once per seed in SEEDS (default "1 2 3"; QUICK=1 means SEEDS=1, a
# first look), into RUNS/seed<N>/; `report` merges the seeds (mean ± sample standard
# deviation in every table, curves with a min–max band) and judges the bands on the means.
#
# Every step is an ordinary layercollapse command, so each can be rerun by hand. Data is
# read from $LAYERCOLLAPSE_DATA (default ../shared/datasets, else ./data, fetched when
# missing: see below); set LC to use another binary.
# Fails (non-zero) if a step fails or a result falls outside its band in configs/expected*.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-full}
LC=${LC:-.build/release/layercollapse}
if [ "${QUICK:-}" = 1 ]; then default_seeds="1"; else default_seeds="1 2 3"; fi
case "$mode" in
  full)
    runs=runs/reproduce
    results=results
    expected=configs/expected.yaml
    seeds=${SEEDS:-$default_seeds}
    overfit=()
    last2=2,3   # the encoder's last 2 of 4 blocks
    last1=3     # the GPT's last of 4
    # No overrides: the configs are the experiment. Sensitivity rounds: 5 epochs of the
    # 4,194 images compress leaves after holding out a tenth, the decoupled pull at λ = 50.
    sens=(--round-steps 330 train.lr=3e-4 train.min_lr=1e-5 lc.lambda=50)
    sst=() cifar=() sweep=() text=() pull=() mixer=() minilm=() minilm_pull=() vgg=() vgg_pull=()
    ;;
  smoke)
    runs=runs/smoke
    results=results/smoke
    expected=configs/expected-smoke.yaml
    # Two seeds, so that every smoke run exercises the report's merge of seeds.
    seeds=${SEEDS:-1 2}
    last2=0,1   # the tiny encoder's 2 blocks
    last1=1     # the tiny GPT's last of 2
    tiny=(model.d_model=32 model.heads=2 model.layers=2 train.eval_every=0 log.every=10)
    # Tiny runs are too short for alpha to reach 1 at the paper's lambda: the decoupled
    # fine-tunes get a stronger pull so that smoke exercises collapse for real.
    pull=(lc.lambda=1000)
    sst=("${tiny[@]}" data.train_limit=2000 data.eval_limit=256 train.epochs=1 data.vocab_size=2000)
    cifar=("${tiny[@]}" data.train_limit=512 data.eval_limit=256 train.epochs=2 train.train_eval_limit=256
      train.warmup_steps=5)
    sweep=("${cifar[@]}")
    # The plain model is already tiny: 16 steps a stage, λ raised by compress as needed.
    sens=(--round-steps 16)
    text=("${tiny[@]}" train.steps=40 data.eval_limit=64 train.eval_every=20)
    # The Mixer's α must reach 1 within seconds too: a decoupled pull, as the fine-tunes.
    mixer=("${cifar[@]}" model.token_mlp_hidden=32 lc.mode=decoupled lc.lambda=400)
    # The real MiniLM (its sizes are fixed), on a few hundred sentences.
    minilm=(data.train_limit=320 data.eval_limit=128 train.eval_every=0 log.every=5)
    # Ten steps: a pull of 2·lr·alpha_lr_scale·λ = 1 per step at the peak rate takes α to 1.
    minilm_pull=(train.warmup_steps=0 lc.lambda=50)
    # A narrow VGG on 512 images for 2 epochs (fine-tune 2 epochs, α pulled hard).
    vgg=(data.train_limit=512 data.eval_limit=256 model.width=0.125 model.mlp_hidden=512 train.epochs=2
      train.train_eval_limit=256 train.warmup_steps=5 log.every=10)
    vgg_pull=(lc.lambda=2000)
    overfit=("${tiny[@]}" data.train_limit=512 data.eval_limit=256 train.epochs=2 train.train_eval_limit=256
      train.warmup_steps=5 model.layers=3)
    ;;
  *)
    echo "usage: scripts/reproduce.sh full|smoke" >&2
    exit 64
    ;;
esac

step() { printf '\n== %s ==\n' "$*" >&2; }

# The datasets: $LAYERCOLLAPSE_DATA when set (used as it is); else ../shared/datasets when it
# holds them; else ./data (ignored by git), fetched there by scripts/fetch_datasets.sh the
# first time, so that `make reproduce` needs nothing set up by hand on a fresh machine.
needed=(sst2/train.tsv sst2/dev.tsv text/austen.txt cifar10-partial/test_batch.bin
  cifar10-partial/data_batch_{1,2,3,4,5}.bin)
holds_data() {
  local f
  for f in "${needed[@]}"; do [ -f "$1/$f" ] || return 1; done
}
if [ -z "${LAYERCOLLAPSE_DATA:-}" ]; then
  if holds_data ../shared/datasets; then
    export LAYERCOLLAPSE_DATA=../shared/datasets
  else
    if ! holds_data data; then
      step "no datasets in ../shared/datasets or ./data: fetching them into ./data (scripts/fetch_datasets.sh)"
      scripts/fetch_datasets.sh data sst2 cifar10-partial austen
    fi
    export LAYERCOLLAPSE_DATA=$PWD/data
  fi
fi
# Each experiment's wall time goes to $runs/times.tsv ("<number><TAB><seconds>"), which the
# report turns into its wall-time table.
current=""
experiment() {
  lap
  current=$1 current_start=$(date +%s)
  step "$1/9 $2"
}
lap() {
  if [ -n "$current" ]; then printf '%s\t%s\n' "$current" $(($(date +%s) - current_start)) >>"$runs/times.tsv"; fi
  current=""
}

# The baselines beside a LayerCollapse fine-tune, one override or flag each: the same
# fine-tune without λ (PReLU kept, α stays put), and without the PReLU swap (GELU, the same
# steps); the same MLPs collapsed with no fine-tune (zero-shot), or replaced by their
# least-squares linear fit on 512 training examples (ReplaceMe's training-free rival).
#   baselines DIR LC_CONFIG START_CHECKPOINT UNITS [key=value...]
baselines() {
  local dir=$1 config=$2 start=$3 units=$4
  shift 4
  train "$config" output.dir="$dir/prelu-no-lambda" train.init_from="$start" "$@" lc.lambda=0
  "$LC" collapse "$dir/prelu-no-lambda/last.h5"
  train "$config" output.dir="$dir/gelu-ft" train.init_from="$start" "$@" lc.blocks=0 lc.lambda=0
  "$LC" collapse "$start" --force "$units" -o "${start%/*}/zero-shot.h5"
  "$LC" collapse "$start" --force "$units" --fit 512 -o "${start%/*}/fit.h5"
  for c in "$dir"/prelu-no-lambda/{last,collapsed}.h5 "$dir/gelu-ft/last.h5" "${start%/*}"/{zero-shot,fit}.h5; do
    "$LC" eval "$c"
  done
}

start=$(date +%s)
root=$runs
for seed in $seeds; do
runs="$root/seed$seed"
mkdir -p "$runs"
seed_start=$(date +%s)
rm -f "$runs/times.tsv"
# What marks this directory as a reproduce root for `layercollapse report` (ExperimentReport.rootMarker).
printf 'scripts/reproduce.sh %s, seed %s, started %s\n' "$mode" "$seed" "$(date -u +%FT%TZ)" >"$runs/reproduce.txt"
train() { "$LC" train "$@" seed="$seed" --overwrite; }
step "seed $seed"

experiment 1 "SST-2: GELU encoder, then LayerCollapse fine-tune of its last 2 MLPs, then collapse"
train configs/sst2-encoder.yaml output.dir="$runs/sst2/gelu" "${sst[@]}"
train configs/sst2-encoder-lc.yaml output.dir="$runs/sst2/lc" train.init_from="$runs/sst2/gelu/best.h5" "${sst[@]}" \
  "${pull[@]}"
"$LC" collapse "$runs/sst2/lc/last.h5"
for c in "$runs/sst2/gelu/best.h5" "$runs/sst2/lc/last.h5" "$runs/sst2/lc/collapsed.h5"; do "$LC" eval "$c"; done
baselines "$runs/sst2" configs/sst2-encoder-lc.yaml "$runs/sst2/gelu/best.h5" "$last2" "${sst[@]}"

experiment 2 "CIFAR-10 small set: ViT plain vs PReLU + LayerCollapse from the start, then collapse"
train configs/cifar10-vit.yaml output.dir="$runs/cifar/plain" "${cifar[@]}"
train configs/cifar10-vit-lc.yaml output.dir="$runs/cifar/lc" "${cifar[@]}"
"$LC" collapse "$runs/cifar/lc/last.h5"
for c in "$runs/cifar/plain/best.h5" "$runs/cifar/lc/last.h5" "$runs/cifar/lc/collapsed.h5"; do "$LC" eval "$c"; done

experiment 3 "Text generation: character GPT, then LayerCollapse fine-tune of its last MLP, then collapse"
train configs/austen-gpt.yaml output.dir="$runs/text/plain" "${text[@]}"
train configs/austen-gpt-lc.yaml output.dir="$runs/text/lc" train.init_from="$runs/text/plain/best.h5" "${text[@]}" \
  "${pull[@]}"
"$LC" collapse "$runs/text/lc/last.h5"
for c in "$runs/text/plain/best.h5" "$runs/text/lc/last.h5" "$runs/text/lc/collapsed.h5"; do
  "$LC" eval "$c"
  "$LC" generate "$c" --prompt "It is a truth universally acknowledged" --tokens 240 --seed 1 >"${c%.h5}.sample.txt"
done
# The same baselines as experiment 1, for the last MLP.
baselines "$runs/text" configs/austen-gpt-lc.yaml "$runs/text/plain/best.h5" "$last1" "${text[@]}"

experiment 4 "Sensitivity: compress collapses the ViT's blocks from the output end, fine-tuning each first"
# --max-drop 100: every block, for the whole curve; the report says where a budget would stop.
"$LC" compress "$runs/cifar/plain/best.h5" --max-drop 100 -o "$runs/sensitivity" --overwrite "${sens[@]}"

experiment 5 "Sweep: lambda for experiment 2 (b), one run per value"
train configs/cifar10-vit-sweep.yaml output.dir="$runs/sweep" "${sweep[@]}"
for dir in "$runs"/sweep/*/; do
  "$LC" collapse "${dir}last.h5"
  "$LC" eval "${dir}collapsed.h5"
done

experiment 6 "CIFAR-10 small set: MLP-Mixer plain vs PReLU + LayerCollapse from the start, then collapse"
train configs/cifar10-mixer.yaml output.dir="$runs/mixer/plain" "${mixer[@]}"
train configs/cifar10-mixer-lc.yaml output.dir="$runs/mixer/lc" "${mixer[@]}"
"$LC" collapse "$runs/mixer/lc/last.h5"
for c in "$runs/mixer/plain/best.h5" "$runs/mixer/lc/last.h5" "$runs/mixer/lc/collapsed.h5"; do "$LC" eval "$c"; done

experiment 7 "SST-2 with a pretrained model: all-MiniLM-L6-v2, GELU fine-tune, LayerCollapse of its last 2 and 4 FFNs"
# The model comes from the data root (scripts/fetch_pretrained.sh puts it there); when it is
# missing it is fetched into ./data (ignored by git).
pretrained="$LAYERCOLLAPSE_DATA/pretrained/all-MiniLM-L6-v2"
if [ ! -f "$pretrained/model.safetensors" ]; then
  scripts/fetch_pretrained.sh data
  pretrained=data/pretrained/all-MiniLM-L6-v2
fi
mkdir -p "$runs/minilm"
"$LC" import "$pretrained" -o "$runs/minilm/minilm.h5" --classes 2
train configs/sst2-minilm.yaml output.dir="$runs/minilm/gelu" train.init_from="$runs/minilm/minilm.h5" "${minilm[@]}"
for k in 2 4; do
  train configs/sst2-minilm-lc.yaml output.dir="$runs/minilm/lc$k" train.init_from="$runs/minilm/gelu/best.h5" \
    lc.blocks="$k" "${minilm[@]}" "${minilm_pull[@]}"
  "$LC" collapse "$runs/minilm/lc$k/last.h5"
  for c in "$runs/minilm/lc$k/last.h5" "$runs/minilm/lc$k/collapsed.h5"; do "$LC" eval "$c"; done
done
"$LC" eval "$runs/minilm/gelu/best.h5"
# Experiment 1's baselines for the last 2 FFNs (the same fine-tune's steps).
baselines "$runs/minilm" configs/sst2-minilm-lc.yaml "$runs/minilm/gelu/best.h5" 4,5 lc.blocks=2 "${minilm[@]}"

experiment 8 "CIFAR-10 small set, VGG: base, LayerCollapse of the head and collapse, and the KD student of the collapsed size"
train configs/cifar10-vgg.yaml output.dir="$runs/vgg/base" "${vgg[@]}"
train configs/cifar10-vgg-lc.yaml output.dir="$runs/vgg/lc" train.init_from="$runs/vgg/base/best.h5" "${vgg[@]}" \
  "${vgg_pull[@]}"
"$LC" collapse "$runs/vgg/lc/last.h5"
for c in "$runs/vgg/base/best.h5" "$runs/vgg/lc/last.h5" "$runs/vgg/lc/collapsed.h5"; do "$LC" eval "$c"; done
train configs/cifar10-vgg-kd.yaml output.dir="$runs/vgg/kd" train.distill_from="$runs/vgg/base/best.h5" "${vgg[@]}"
"$LC" eval "$runs/vgg/kd/best.h5"

experiment 9 "CIFAR-10 small set: a ViT that memorises it, plain vs LayerCollapse as the only regularizer"
train configs/cifar10-vit-overfit.yaml output.dir="$runs/overfit/plain" "${overfit[@]}"
train configs/cifar10-vit-overfit-lc.yaml output.dir="$runs/overfit/lc" "${overfit[@]}"
"$LC" collapse "$runs/overfit/lc/last.h5"
for c in "$runs/overfit/plain/best.h5" "$runs/overfit/lc/last.h5" "$runs/overfit/lc/collapsed.h5"; do "$LC" eval "$c"; done
# The usual regularizers at experiment 2's strengths, one override each, beside LayerCollapse.
train configs/cifar10-vit-overfit.yaml output.dir="$runs/overfit/plain-dropout" "${overfit[@]}" model.dropout=0.1
train configs/cifar10-vit-overfit.yaml output.dir="$runs/overfit/plain-wd" "${overfit[@]}" train.weight_decay=0.05
lap
echo "seed $seed: $(($(date +%s) - seed_start)) s" >&2
done

step "Report"
"$LC" report "$root" -o "$results" --check "$expected" --elapsed $(($(date +%s) - start))
