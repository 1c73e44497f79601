#!/usr/bin/env python3
"""Rebuild a model written by `layercollapse export` as a PyTorch nn.Module.

    python scripts/load_exported.py DIR                  # print the model and its size
    python scripts/load_exported.py DIR --check BUNDLE   # compare logits with a parity bundle

As a library (this directory on sys.path):

    from load_exported import load
    model = load("exported/vit-small")     # torch.nn.Module, eval mode
    logits = model(ids, valid, images)     # ids/valid for token models, images (B, C, S, S) for image models

DIR holds model.safetensors (float32 parameters under our PyTorch-style names) and
config.json (the architecture: family, sizes, each unit's activation, which units are
collapsed). The module comes from scripts/torch_reference.py, the PyTorch mirror the
parity tests hold to our implementation; collapsed units are single nn.Linear layers.
Needs torch and numpy only (the safetensors file is parsed here).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import InputError, build_model, model_inputs, read_bundle  # noqa: E402

FORMAT = "layercollapse"
DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "BF16": None}


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Every float tensor of a safetensors file, as float32 arrays."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise InputError(f"{path}: too short for a safetensors file")
    (length,) = struct.unpack("<Q", raw[:8])
    if length > len(raw) - 8:
        raise InputError(f"{path}: header length {length} exceeds the file")
    header = json.loads(raw[8 : 8 + length])
    data = memoryview(raw)[8 + length :]
    out: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPES:
            raise InputError(f"{path}: tensor {name}: dtype {dtype} is not a float type")
        chunk = data[begin:end]
        if dtype == "BF16":
            values = (np.frombuffer(chunk, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            values = np.frombuffer(chunk, dtype=np.dtype(DTYPES[dtype]).newbyteorder("<")).astype(np.float32)
        out[name] = values.reshape(shape)
    return out


def load(directory: str, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """The exported model in `directory`, in evaluation mode."""
    config_path = os.path.join(directory, "config.json")
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{config_path}: cannot read: {e}") from e
    if config.get("format") != FORMAT:
        raise InputError(f"{config_path}: not a layercollapse export (format {config.get('format')!r})")
    if int(config.get("format_version", 0)) > 1:
        raise InputError(f"{config_path}: format_version {config['format_version']} is newer than this loader (1)")
    params = read_safetensors(os.path.join(directory, "model.safetensors"))
    model = build_model(config["architecture"], params, dtype, directory)
    return model.eval()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", help="a directory `layercollapse export` wrote")
    parser.add_argument("--check", metavar="BUNDLE", help="a parity bundle: compare its logits with the module's")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest relative logit difference (default 1e-4)")
    args = parser.parse_args(argv)
    try:
        model = load(args.directory)
        if not args.check:
            count = sum(p.numel() for p in model.parameters())
            print(f"{args.directory}: {type(model).__name__}, {count} parameters")
            return 0
        bundle = read_bundle(args.check)
        with torch.no_grad():
            logits = model(*model_inputs(bundle, torch.float32)).numpy()
    except InputError as e:
        print(f"load_exported: {e}", file=sys.stderr)
        return 2
    expected = bundle.logits.reshape(logits.shape)
    scale = max(float(np.max(np.abs(expected))), 1e-12)
    difference = float(np.max(np.abs(logits - expected))) / scale
    ok = difference <= args.tolerance
    print(f"logits: max relative difference {difference:.3g} ({'ok' if ok else 'MISMATCH'}, tolerance {args.tolerance:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
