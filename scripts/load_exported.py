#!/usr/bin/env python3
"""Rebuild a model written by `layercollapse export` as a PyTorch nn.Module.

    python scripts/load_exported.py DIR                  # print the model and its size
    python scripts/load_exported.py DIR --check BUNDLE   # compare logits with a parity bundle

As a library (this directory on sys.path):

    from load_exported import load, image_input, read_preprocessing
    model = load("exported/vit-small")     # torch.nn.Module, eval mode
    images = image_input(pixels, read_preprocessing("exported/vit-small"))  # uint8 (B, 3, 32, 32) RGB
    logits = model(None, None, images)     # (B, classes)
    logits = model(ids, valid, None)       # token models: ids (B, T) int64, valid (B, T) bool or None

A classifier's logits are (B, classes); a language model's come back flattened, (B·T,
vocabulary), row b·T + t predicting the token after position t of sequence b.

DIR holds model.safetensors (float32 parameters under our PyTorch-style names) and
config.json: the architecture (family, sizes, each unit's activation, which units are
collapsed and which of those merges were approximate) and `preprocessing`, what turns raw inputs into the model's:
  - images: `image_size`, and per-channel `mean`/`std`: a pixel p of channel c becomes
    (p/255 - mean[c]) / std[c], then a bilinear (antialiased) resize to image_size;
    `image_input` does both.
  - tokens: `max_len` and the `tokenizer`. "wordpiece" and "bpe" (imported BERT and GPT-2)
    have their files beside (`files`: vocab.txt and tokenizer_config.json, or vocab.json and
    merges.txt), which
    transformers' BertTokenizer and GPT2Tokenizer read. "words" lists `tokens` in id order
    (ids 0-3 are [PAD] [UNK] [CLS] [SEP]; a sequence is [CLS] then the words of the
    lowercased text, padded with [PAD]): `text_input` encodes sentences exactly as
    layercollapse does. "character" lists the Unicode code points (`characters`, integers)
    in id order; "byte" uses the UTF-8 bytes as ids.
The module comes from scripts/torch_reference.py, the PyTorch mirror the parity tests hold
to our implementation; collapsed units are single nn.Linear layers. `--check` compares with
a parity bundle, the HDF5 file the tests write (inputs and our logits). Needs torch and
numpy only (the safetensors file is parsed here).
"""
import argparse
import json
import os
import struct
import sys
import unicodedata

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


def read_config(directory: str) -> dict:
    """The export's config.json, checked to be ours."""
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
    return config


def read_preprocessing(directory: str) -> dict:
    """What turns raw inputs into the model's (see the module's description); {} for an
    export written before layercollapse recorded it."""
    return read_config(directory).get("preprocessing", {})


def image_input(pixels: np.ndarray, preprocessing: dict) -> torch.Tensor:
    """uint8 RGB images (B, 3, H, W), channels first as CIFAR stores them, as the model
    reads them: normalized with the export's mean/std, resized (bilinear, antialiased, as
    torchvision's Resize) to its image size."""
    if not preprocessing:
        raise InputError("the export records no preprocessing (written by an older layercollapse): export it again")
    if preprocessing.get("input") != "images":
        raise InputError(f"not an image model: it reads {preprocessing.get('input')}")
    if "mean" not in preprocessing or "std" not in preprocessing:
        raise InputError(f"the export has no image normalization: {preprocessing.get('normalization')}")
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise InputError(f"expected uint8 pixels (0-255), got {pixels.dtype}: image_input scales them by 1/255 itself")
    if pixels.ndim != 4 or pixels.shape[1] != 3:
        raise InputError(f"expected images (B, 3, H, W), got shape {pixels.shape}")
    mean = torch.tensor(preprocessing["mean"], dtype=torch.float32).reshape(1, 3, 1, 1)
    scale = 1 / torch.tensor(preprocessing["std"], dtype=torch.float32).reshape(1, 3, 1, 1)
    x = (torch.from_numpy(pixels.astype(np.float32)) / 255 - mean) * scale
    size = int(preprocessing["image_size"])
    if x.shape[2:] != (size, size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


# Tokenizer.split's classes: a word is a run of letters, digits and marks.
_WORD_CATEGORIES = {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No"}
# Unicode's White_Space property (Swift's `isWhitespace`), which str.isspace() does not match.
_WHITE_SPACE = {*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F,
                0x205F, 0x3000}
_JOINERS = {"'", "\u2019", "-"}


def split_words(text: str) -> list[str]:
    """The "words" tokenizer's split (layercollapse's Tokenizer.split): the text lowercased
    a character at a time (no final-sigma rule); a word is a maximal run of letters, digits
    and combining marks; an apostrophe (' or \u2019) or hyphen stays inside a word between
    two word characters ("don't", "well-made"); every other character that is not white
    space, a control or a format character is a token of its own ("'s" -> "'", "s").
    Character classes come from Python's unicodedata (Unicode 14 in Python 3.11); a
    character assigned in a later Unicode version than both sides know may split otherwise."""
    chars = [c for ch in text for c in ch.lower()]
    tokens, word = [], []
    for i, ch in enumerate(chars):
        category = unicodedata.category(ch)
        if category in _WORD_CATEGORIES:
            word.append(ch)
        elif ch in _JOINERS and word and i + 1 < len(chars) and unicodedata.category(chars[i + 1]) in _WORD_CATEGORIES:
            word.append(ch)
        else:
            if word:
                tokens.append("".join(word))
                word = []
            if ord(ch) not in _WHITE_SPACE and category not in ("Cc", "Cf"):
                tokens.append(ch)
    if word:
        tokens.append("".join(word))
    return tokens


def text_input(texts: list[str], preprocessing: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Sentences as a "words" sentence classifier reads them: (ids, valid), both
    (len(texts), max_len): [CLS] (2), then each word's id ([UNK], 1, for a word not in
    `tokens`), cut at max_len, padded with [PAD] (0); `valid` is False on the padding.
    `model(ids, valid, None)` gives the logits."""
    if not preprocessing:
        raise InputError("the export records no preprocessing (written by an older layercollapse): export it again")
    kind = preprocessing.get("tokenizer")
    if kind != "words":
        files = preprocessing.get("files")
        where = f": transformers' tokenizer reads its files beside the model ({', '.join(files)})" if files else ""
        raise InputError(f"text_input encodes the \"words\" tokenizer; this export's is {kind!r}{where}")
    # Swift compares strings by canonical equivalence ("cafe\u0301" is "caf\u00e9"): NFC here.
    ids_of = {}
    for i, token in enumerate(preprocessing["tokens"]):
        ids_of.setdefault(unicodedata.normalize("NFC", token), i)
    length = int(preprocessing["max_len"])
    ids = torch.zeros((len(texts), length), dtype=torch.int64)
    valid = torch.zeros((len(texts), length), dtype=torch.bool)
    for row, text in enumerate(texts):
        words = split_words(text)[: max(0, length - 1)]
        sequence = [2] + [ids_of.get(unicodedata.normalize("NFC", word), 1) for word in words]
        sequence = sequence[:length]
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.int64)
        valid[row, : len(sequence)] = True
    return ids, valid


def load(directory: str, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """The exported model in `directory`, in evaluation mode."""
    config = read_config(directory)
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
            steps = read_preprocessing(args.directory)
            shown = {k: (f"{len(v)} entries" if isinstance(v, list) and len(v) > 8 else v) for k, v in steps.items()}
            print(f"preprocessing: {json.dumps(shown) if steps else 'not recorded (an older export)'}")
            approximate = [i for i, a in enumerate(read_config(args.directory)["architecture"].get("approximate", [])) if a]
            if approximate:
                print(f"note: units {approximate} were merged approximately: the model only approximates the one it came from")
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
