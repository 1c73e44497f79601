#!/usr/bin/env python3
"""PyTorch side of `make bench`: time training steps or forward passes of a checkpoint.

lc-bench writes the model as a layercollapse checkpoint and as `layercollapse export`
writes it (a directory of model.safetensors and config.json), the batch as a small HDF5
file, runs its own side on the checkpoint in one process and this script on the export
in another (alternating the two), and reads the one JSON line this script prints. The
export is rebuilt with load_exported.py (torch_reference.py's builder), so both sides run
the same architecture and weights. --checkpoint also takes a checkpoint (.h5) itself.

Modes
-----
  torch_bench.py train --checkpoint EXPORT_DIR --batch BATCH.h5 --threads N --warmup W --steps K
      W untimed then K timed training steps in float32, as our Trainer does them:
      forward, mean cross-entropy + λ·Σ(α − 1)² over the PReLU blocks, backward,
      clip_grad_norm_(1.0), torch.optim.AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-8,
      weight decay 0.01 on the two-dimensional tensors and α, PyTorch's default
      AdamW implementation).

  torch_bench.py infer --checkpoint FULL_DIR --checkpoint COLLAPSED_DIR --batch B1.h5
                       --batch B256.h5 --threads N --warmup W --steps K
      For each batch file, W untimed then K timed forward passes of every checkpoint,
      interleaved (full, collapsed, full, ...), in eval mode under torch.inference_mode().

  --peak (either mode): afterwards, the median rate of five 2048³ torch.mm products
      (the machine's SGEMM peak as MKL reaches it), as "gemm_peak_gflops", measured after
      peak_rss_kb was read.

Output: one JSON line on stdout,
  train: {"step_ms": [...], "peak_rss_kb": n, "start_rss_kb": n, "torch": "2.13.0"}
  infer: {"runs": [{"model": i, "batch": b, "ms": [...]}, ...], "peak_rss_kb": ..., ...}
peak_rss_kb is the process's VmHWM (peak resident set) at the end, start_rss_kb its
VmRSS after `import torch` and before the model is built.

Batch files (written by lc-bench): /images float32 (B, C, S, S) or /ids int64 (B, T);
/targets int64, (B) labels or (B·T) next tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import load_exported  # noqa: E402
from torch_reference import adamw_groups, build_model, penalty_of, read_checkpoint  # noqa: E402

LAMBDA = 1.0
SETTINGS = {"step_lr": 1e-3, "weight_decay": 0.01, "mode": "penalty", "alpha_lr_scale": 1.0}


def status_kb(field: str) -> int:
    """A field of /proc/self/status in kB (VmHWM, VmRSS), or ru_maxrss where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


START_RSS_KB = status_kb("VmRSS")


def read_batch(path: str) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """(ids, images, targets) of a batch file; the absent input is None."""
    with h5py.File(path, "r") as f:
        ids = torch.from_numpy(np.asarray(f["/ids"][()], dtype=np.int64)) if "/ids" in f else None
        images = torch.from_numpy(np.asarray(f["/images"][()], dtype=np.float32)) if "/images" in f else None
        targets = torch.from_numpy(np.asarray(f["/targets"][()], dtype=np.int64))
    return ids, images, targets


def load_model(path: str) -> tuple[torch.nn.Module, dict]:
    """The model of an export directory or a checkpoint file, and its architecture."""
    if os.path.isdir(path):
        return load_exported.load(path), load_exported.read_config(path)["architecture"]
    ckpt = read_checkpoint(path)
    return build_model(ckpt.architecture, ckpt.params, torch.float32, path), ckpt.architecture


def milliseconds(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def train(args: argparse.Namespace) -> dict:
    model, architecture = load_model(args.checkpoint[0])
    model.train()
    ids, images, targets = read_batch(args.batch[0])
    prelu_blocks = [i for i, a in enumerate(architecture["activations"]) if a == "prelu"]
    params = [p for p in model.parameters()]
    optimizer = torch.optim.AdamW(adamw_groups(model, SETTINGS), betas=(0.9, 0.999), eps=1e-8)

    def step() -> None:
        optimizer.zero_grad()
        logits = model(ids, None, images)
        loss = F.cross_entropy(logits, targets, ignore_index=-1)
        total = loss + penalty_of(model, LAMBDA, prelu_blocks)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    for _ in range(args.warmup):
        step()
    times: list[float] = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(milliseconds(t0))
    return {"step_ms": times}


def infer(args: argparse.Namespace) -> dict:
    models = [load_model(p)[0] for p in args.checkpoint]
    for m in models:
        m.eval()
    runs: list[dict] = []
    with torch.inference_mode():
        for batch_path in args.batch:
            ids, images, _ = read_batch(batch_path)
            size = int((ids if ids is not None else images).shape[0])
            records = [{"model": i, "batch": size, "ms": []} for i in range(len(models))]
            for rep in range(args.warmup + args.steps):
                for m, record in zip(models, records):
                    t0 = time.perf_counter()
                    m(ids, None, images)
                    if rep >= args.warmup:
                        record["ms"].append(milliseconds(t0))
            runs.extend(records)
    return {"runs": runs}


def sgemm_peak_gflops(n: int = 2048) -> float:
    """Median GFLOP/s of five n³ float32 products (after one untimed) at the set threads."""
    generator = torch.Generator().manual_seed(1)
    a = torch.randn(n, n, generator=generator)
    b = torch.randn(n, n, generator=generator)
    times: list[float] = []
    for k in range(6):
        t0 = time.perf_counter()
        torch.mm(a, b)
        if k > 0:
            times.append(time.perf_counter() - t0)
    times.sort()
    return 2.0 * n**3 / times[len(times) // 2] / 1e9


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="torch_bench.py", description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["train", "infer"])
    parser.add_argument("--checkpoint", action="append", required=True, help="a directory `layercollapse export` wrote, or a checkpoint (.h5)")
    parser.add_argument("--batch", action="append", required=True, help="a batch file written by lc-bench")
    parser.add_argument("--threads", type=int, required=True, help="torch.set_num_threads")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--peak", action="store_true", help="then time 2048³ SGEMM products")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = train(args) if args.mode == "train" else infer(args)
    result["peak_rss_kb"] = status_kb("VmHWM")
    if args.peak:
        result["gemm_peak_gflops"] = sgemm_peak_gflops()
    result["start_rss_kb"] = START_RSS_KB
    result["torch"] = torch.__version__
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
