#!/usr/bin/env python3
"""PyTorch reference for layercollapse checkpoints: rebuild a model, check our numbers.

The model is rebuilt from the checkpoint's documented layout only (README, "Run
directories and checkpoints"): the JSON in /meta/architecture gives the kind (encoder,
vit, gpt, or mixer), sizes, per-unit activation and collapsed flags (a unit is a
transformer block's MLP, or a Mixer block's token or channel MLP); /params/<name> gives
every tensor. Nothing of
the Swift code is imported or assumed beyond that layout. Parts are PyTorch's own where
PyTorch has them: nn.Embedding, nn.Conv2d (patch embedding: our (d, 3·p·p) weight is
reshaped to the conv kernel (d, 3, p, p)), nn.LayerNorm (eps 1e-5), nn.Linear,
F.multi_head_attention_forward (our packed qkv weight is its in_proj_weight, proj its
out_proj), F.gelu, F.prelu with ONE slope, F.cross_entropy(ignore_index=-1),
torch.nn.utils.clip_grad_norm_ and torch.optim.AdamW.

Modes
-----
  torch_reference.py CKPT.h5
      Rebuild the model and print its parameter table (a quick look that it loads).

  torch_reference.py CKPT.h5 --check BUNDLE.h5
      Compare a parity bundle written by the Swift tests for CKPT against PyTorch:
        logits           our forward pass on the bundle's batch
        loss, penalty    mean cross-entropy and λ·Σ(α−1)² over the selected blocks
        grad <name>      d(loss + penalty)/d(param) (penalty only in `penalty` mode),
                         before clipping, every parameter including each α
        step <name>      the parameter after one training step on the same batch:
                         clip (if grad_clip > 0), decoupled pull of α (in `decoupled`
                         mode), then torch.optim.AdamW with our decay groups
  torch_reference.py --collapse-check UNCOLLAPSED.h5 COLLAPSED.h5 BUNDLE.h5
      Collapse UNCOLLAPSED in PyTorch: for every unit COLLAPSED marks collapsed (and
      UNCOLLAPSED does not), W = W2 @ W1 and b = W2 @ b1 + b2; every other tensor is
      UNCOLLAPSED's. Compare the merged weights with COLLAPSED's, and the logits of the
      PyTorch-collapsed model with BUNDLE's (which our collapsed model wrote).

Every mode prints one row per compared tensor and exits 0 when all agree, 1 when any
does not (the failing rows say MISMATCH and are listed at the end), 2 on a usage error
or an unreadable file.

Tolerances (all per tensor; `ref` is PyTorch's value, `ours` the bundle's)
-------------------------------------------------------------------------
  logits, loss, penalty, collapsed logits
      max|ours − ref| / max(max|ref|, 1e-12) ≤ 1e-4 (relative to the largest |logit|)
  gradients
      max|ours − ref| / max(max|ref|, 1e-4·G) ≤ 1e-3, G the largest |gradient| of the
      model (relative to the tensor's largest |gradient|, so a tensor of small gradients
      is held to its own scale; one whose gradient is zero up to rounding, such as the
      Mixer's token-MLP output bias that every following LayerNorm removes, to 1e-7·G,
      where float32 rounding of sums of O(G) terms leaves ~1e-8·G)
  updated parameters
      |ours − ref| ≤ 1e-3·lr + 1e-6·max|ref| element-wise. AdamW's first step moves
      each element by lr·g/(|g| + eps) ≈ ±lr whatever |g| is, so the check is in units
      of lr; 1e-6·max|p| (≈ 8 float32 ulps) covers the rounding of the stored parameter.
      Where a gradient is small, the step is sensitive to its last bits: the step
      lr·g/(|g| + eps) moves by lr·eps·δ/(|g| + eps)² when g moves by δ. Each element's
      bound is therefore widened by 2·|f(g_ours) − f(g_ref)|, f(g) = lr·g/(|g| + eps) on
      the clipped gradients: the step difference the measured gradient disagreement
      alone explains (×2 for our own clip factor and the rounding of the step itself);
      at most 4·lr, for gradients whose sign the disagreement leaves open. The row says
      how many elements needed it.
  merged weights (collapse check)
      max|ours − ref| / max(max|ref|, 1e-12) ≤ 1e-5 (float32 GEMM over the hidden units)

The reference runs in float64 by default (`--dtype float64`): the float32 checkpoint
values are exact in float64, so a difference measures our float32 arithmetic alone.
`--dtype float32` runs PyTorch in float32 instead.

Parity bundle layout (HDF5, written by Tests/LayerCollapseTests/ParitySupport.swift)
-----------------------------------------------------------------------------------
  /                 attributes format = "layercollapse-parity-bundle", version = 1
  /meta/settings    string, JSON {lr, step_lr, alpha_lr_scale, beta1, beta2, eps,
                    weight_decay, grad_clip, lambda, mode, blocks}; step_lr is the
                    learning rate the step used (the schedule's value at step 0)
  /input/ids        int64 (B, T)            token models
  /input/valid      int64 (B, T), 1 = token, 0 = padding (absent: all tokens)
  /input/images     float32 (B, C, S, S)    vit
  /targets          int64 (N): (B) labels or (B·T) next tokens; -1 = ignored
  /logits           float32 (N, K)
  /loss, /penalty   float32 (1)
  /grads/<name>     float32, "." -> "/" as in checkpoints, before clipping
  /updated/<name>   float32, after one step

Weight decay groups (as the Swift trainer flags them): every tensor stored with two
dimensions (linear weights, embeddings including pos_emb, the patch embedding) decays;
biases, LayerNorm, cls_token do not; α decays in `penalty` mode and not in `decoupled`
mode, and its learning rate is lr·alpha_lr_scale.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CHECKPOINT_FORMAT = "layercollapse-checkpoint"
BUNDLE_FORMAT = "layercollapse-parity-bundle"

LOGIT_TOL = 1e-4
GRAD_TOL = 1e-3
GRAD_FLOOR = 1e-4
STEP_LR_TOL = 1e-3
STEP_PARAM_TOL = 1e-6
MERGE_TOL = 1e-5
TINY = 1e-12


class InputError(Exception):
    """A file that is not what the mode needs: reported and exit code 2."""


# MARK: reading files


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return _text(value.item() if value.shape == () else value[0])
    return str(value)


def _datasets(group: h5py.Group) -> dict[str, np.ndarray]:
    """Every dataset under group, keyed by its path with "/" -> "." (the parameter name)."""
    out: dict[str, np.ndarray] = {}

    def visit(path: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            out[path.replace("/", ".")] = np.asarray(obj[()])

    group.visititems(visit)
    return out


@dataclass
class Checkpoint:
    path: str
    architecture: dict
    params: dict[str, np.ndarray]

    @property
    def config(self) -> dict:
        return self.architecture["config"]


def read_checkpoint(path: str) -> Checkpoint:
    try:
        with h5py.File(path, "r") as f:
            fmt = _text(f.attrs.get("format", b""))
            if fmt != CHECKPOINT_FORMAT:
                raise InputError(f"{path}: not a layercollapse checkpoint (format attribute {fmt!r})")
            arch = json.loads(_text(f["/meta/architecture"][()]))
            params = _datasets(f["/params"])
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e}") from e
    return Checkpoint(path, arch, params)


@dataclass
class Bundle:
    path: str
    settings: dict
    ids: np.ndarray | None
    valid: np.ndarray | None
    images: np.ndarray | None
    targets: np.ndarray
    logits: np.ndarray
    loss: float
    penalty: float
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    updated: dict[str, np.ndarray] = field(default_factory=dict)


def read_bundle(path: str) -> Bundle:
    try:
        with h5py.File(path, "r") as f:
            fmt = _text(f.attrs.get("format", b""))
            if fmt != BUNDLE_FORMAT:
                raise InputError(f"{path}: not a parity bundle (format attribute {fmt!r})")

            def optional(p: str) -> np.ndarray | None:
                return np.asarray(f[p][()]) if p in f else None

            return Bundle(
                path=path,
                settings=json.loads(_text(f["/meta/settings"][()])),
                ids=optional("/input/ids"),
                valid=optional("/input/valid"),
                images=optional("/input/images"),
                targets=np.asarray(f["/targets"][()]),
                logits=np.asarray(f["/logits"][()]),
                loss=float(np.asarray(f["/loss"][()]).reshape(-1)[0]),
                penalty=float(np.asarray(f["/penalty"][()]).reshape(-1)[0]),
                grads=_datasets(f["/grads"]) if "/grads" in f else {},
                updated=_datasets(f["/updated"]) if "/updated" in f else {},
            )
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e}") from e


# MARK: the model


class ScalarPReLU(nn.Module):
    """PReLU with one learnable slope for the whole block: x if x > 0 else α·x."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.prelu(x, self.alpha)


class Activation(nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in ("gelu", "gelu_exact", "relu"):
            raise InputError(f"unknown activation {name!r}")
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.name == "gelu":
            return F.gelu(x, approximate="tanh")
        if self.name == "gelu_exact":
            return F.gelu(x)
        return F.relu(x)


class MLP(nn.Module):
    """fc1 -> act -> fc2, or a single `linear` for a collapsed block."""

    def __init__(self, d: int, hidden: int, activation: str, collapsed: bool) -> None:
        super().__init__()
        self.collapsed = collapsed
        if collapsed:
            self.linear = nn.Linear(d, d)
        else:
            self.fc1 = nn.Linear(d, hidden)
            self.act = ScalarPReLU() if activation == "prelu" else Activation(activation)
            self.fc2 = nn.Linear(hidden, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.collapsed:
            return self.linear(x)
        return self.fc2(self.act(self.fc1(x)))


class SelfAttention(nn.Module):
    """PyTorch's multi-head attention with our packed qkv (rows q | k | v) and proj."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.d = d
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, causal: bool, padding: torch.Tensor | None) -> torch.Tensor:
        t = x.shape[1]
        xt = x.transpose(0, 1)  # (T, B, d), the functional's layout
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1) if causal else None
        out, _ = F.multi_head_attention_forward(
            xt, xt, xt, self.d, self.heads,
            in_proj_weight=self.qkv.weight, in_proj_bias=self.qkv.bias,
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
            out_proj_weight=self.proj.weight, out_proj_bias=self.proj.bias,
            training=False, key_padding_mask=padding, need_weights=False, attn_mask=mask,
        )  # fmt: skip
        return out.transpose(0, 1)


class Block(nn.Module):
    """Pre-LayerNorm: x + attn(ln1(x)), then x + mlp(ln2(x))."""

    def __init__(self, d: int, heads: int, hidden: int, activation: str, collapsed: bool, eps: float = 1e-5) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.attn = SelfAttention(d, heads)
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.mlp = MLP(d, hidden, activation, collapsed)

    def forward(self, x: torch.Tensor, causal: bool, padding: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), causal, padding)
        return x + self.mlp(self.ln2(x))


class Model(nn.Module):
    """Encoder, ViT or GPT, with parameter names equal to the checkpoint's."""

    def __init__(self, architecture: dict) -> None:
        super().__init__()
        cfg = architecture["config"]
        self.kind: str = cfg["kind"]
        self.pooling: str = cfg.get("pooling", "cls")
        self.tied: bool = self.kind == "gpt" and bool(cfg.get("tie_weights", False))
        d = int(cfg["d_model"])
        if self.kind in ("encoder", "gpt"):
            self.tok_emb = nn.Embedding(int(cfg["vocab_size"]), d)
            positions = max(int(cfg.get("max_positions", 0)), int(cfg["max_len"]))
        elif self.kind == "vit":
            p = int(cfg["patch_size"])
            side = int(cfg["image_size"]) // p
            self.patch_emb = nn.Conv2d(int(cfg["image_channels"]), d, kernel_size=p, stride=p)
            self.cls_token = nn.Parameter(torch.zeros(d))
            positions = side * side + 1
        else:
            raise InputError(f"unknown model kind {self.kind!r}")
        self.pos_emb = nn.Embedding(positions, d)
        activations: list[str] = architecture["activations"]
        collapsed: list[bool] = architecture["collapsed"]
        eps = float(cfg.get("layer_norm_epsilon", 1e-5))
        self.blocks = nn.ModuleList(
            Block(d, int(cfg["heads"]), int(cfg["mlp_hidden"]), activations[i], bool(collapsed[i]), eps)
            for i in range(int(cfg["layers"]))
        )
        self.ln_f = nn.LayerNorm(d, eps=eps)
        outputs = int(cfg["vocab_size"]) if self.kind == "gpt" else int(cfg["classes"])
        if not self.tied:
            self.head = nn.Linear(d, outputs, bias=self.kind != "gpt")

    def forward(
        self, ids: torch.Tensor | None, valid: torch.Tensor | None, images: torch.Tensor | None
    ) -> torch.Tensor:
        """Logits (B, K) for classifiers, (B·T, V) for gpt."""
        if self.kind == "vit":
            if images is None:
                raise InputError("a vit reads images: the bundle has no /input/images")
            patches = self.patch_emb(images).flatten(2).transpose(1, 2)  # (B, N, d), raster order
            cls = self.cls_token.expand(patches.shape[0], 1, -1)
            x = torch.cat([cls, patches], dim=1)
        else:
            if ids is None:
                raise InputError(f"a {self.kind} reads tokens: the bundle has no /input/ids")
            x = self.tok_emb(ids)
        t = x.shape[1]
        x = x + self.pos_emb(torch.arange(t))
        padding = None if valid is None else ~valid  # True = ignore this key
        for block in self.blocks:
            x = block(x, self.kind == "gpt", padding)
        x = self.ln_f(x)
        if self.kind == "gpt":
            w = self.tok_emb.weight if self.tied else self.head.weight
            return (x @ w.T).reshape(-1, w.shape[0])
        if self.kind == "vit" or self.pooling == "cls":
            pooled = x[:, 0]
        else:  # mean over the valid tokens (all of them without a mask)
            m = torch.ones(x.shape[:2], dtype=x.dtype) if valid is None else valid.to(x.dtype)
            pooled = (x * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True)
        return self.head(pooled)


class MixerBlock(nn.Module):
    """x + token_mlp(ln1(x) over the patches), then x + channel_mlp(ln2(x))."""

    def __init__(self, d: int, s: int, token_hidden: int, channel_hidden: int, acts: list, collapsed: list) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.token_mlp = MLP(s, token_hidden, acts[0], bool(collapsed[0]))
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.channel_mlp = MLP(d, channel_hidden, acts[1], bool(collapsed[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.token_mlp(self.ln1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.ln2(x))


class MixerModel(nn.Module):
    """MLP-Mixer (Tolstikhin et al., 2021) with parameter names equal to the checkpoint's:
    patch_emb (a stride-p conv), blocks of token- and channel-mixing MLPs, ln_f, mean over
    patches, head. Its LayerCollapse units are each block's token_mlp, then channel_mlp."""

    def __init__(self, architecture: dict) -> None:
        super().__init__()
        cfg = architecture["config"]
        self.kind = "mixer"
        d = int(cfg["d_model"])
        p = int(cfg["patch_size"])
        s = (int(cfg["image_size"]) // p) ** 2
        self.patch_emb = nn.Conv2d(int(cfg["image_channels"]), d, kernel_size=p, stride=p)
        acts: list[str] = architecture["activations"]
        collapsed: list[bool] = architecture["collapsed"]
        self.blocks = nn.ModuleList(
            MixerBlock(
                d, s, int(cfg["token_mlp_hidden"]), int(cfg["mlp_hidden"]), acts[2 * i : 2 * i + 2],
                collapsed[2 * i : 2 * i + 2],
            )
            for i in range(int(cfg["layers"]))
        )  # fmt: skip
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        self.head = nn.Linear(d, int(cfg["classes"]))

    def forward(
        self, ids: torch.Tensor | None, valid: torch.Tensor | None, images: torch.Tensor | None
    ) -> torch.Tensor:
        if images is None:
            raise InputError("a mixer reads images: the bundle has no /input/images")
        x = self.patch_emb(images).flatten(2).transpose(1, 2)  # (B, S, d), raster order
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x).mean(1))


class BertBlock(nn.Module):
    """Post-LayerNorm: x = ln1(x + attn(x)), then ln2(x + mlp(x))."""

    def __init__(self, d: int, heads: int, hidden: int, activation: str, collapsed: bool, eps: float) -> None:
        super().__init__()
        self.attn = SelfAttention(d, heads)
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.mlp = MLP(d, hidden, activation, collapsed)
        self.ln2 = nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
        x = self.ln1(x + self.attn(x, False, padding))
        return self.ln2(x + self.mlp(x))


class BertModel(nn.Module):
    """Our `bert`: token + position + type-0 embeddings, their LayerNorm, post-LN blocks,
    a tanh pooler on the first position and the classifier (names as the checkpoint's)."""

    def __init__(self, architecture: dict) -> None:
        super().__init__()
        cfg = architecture["config"]
        d = int(cfg["d_model"])
        eps = float(cfg.get("layer_norm_epsilon", 1e-12))
        self.tok_emb = nn.Embedding(int(cfg["vocab_size"]), d)
        self.pos_emb = nn.Embedding(max(int(cfg.get("max_positions", 0)), int(cfg["max_len"])), d)
        self.type_emb = nn.Embedding(max(int(cfg.get("type_vocab_size", 0)), 1), d)
        self.emb_ln = nn.LayerNorm(d, eps=eps)
        activations: list[str] = architecture["activations"]
        collapsed: list[bool] = architecture["collapsed"]
        self.blocks = nn.ModuleList(
            BertBlock(d, int(cfg["heads"]), int(cfg["mlp_hidden"]), activations[i], bool(collapsed[i]), eps)
            for i in range(int(cfg["layers"]))
        )
        self.pooler = nn.Linear(d, d)
        self.head = nn.Linear(d, int(cfg["classes"]))

    def forward(
        self, ids: torch.Tensor | None, valid: torch.Tensor | None, images: torch.Tensor | None
    ) -> torch.Tensor:
        if ids is None:
            raise InputError("a bert reads tokens: the bundle has no /input/ids")
        t = ids.shape[1]
        x = self.tok_emb(ids) + self.pos_emb(torch.arange(t)) + self.type_emb(torch.zeros_like(ids))
        x = self.emb_ln(x)
        padding = None if valid is None else ~valid
        for block in self.blocks:
            x = block(x, padding)
        return self.head(torch.tanh(self.pooler(x[:, 0])))


def vgg_groups(cfg: dict, collapsed: list[bool]) -> list[tuple[int, int, int, int]]:
    """The head's linears as (first, last, inputs, outputs): runs of fc1..fc3 merged where
    the junction between them (unit j: after fc(j+1)) is collapsed."""
    channels = [w for w in cfg["conv_layers"] if w > 0]
    trunk = channels[-1] if channels else int(cfg["image_channels"])
    p, hidden, classes = int(cfg["pooled_size"]), int(cfg["mlp_hidden"]), int(cfg["classes"])
    inputs, outputs = [trunk * p * p, hidden, hidden], [hidden, hidden, classes]
    groups = [[1, 1, inputs[0], outputs[0]]]
    for j in range(2):
        if collapsed[j]:
            groups[-1][1], groups[-1][3] = j + 2, outputs[j + 1]
        else:
            groups.append([j + 2, j + 2, inputs[j + 1], outputs[j + 1]])
    return [tuple(g) for g in groups]  # type: ignore[misc]


class VGGHead(nn.Module):
    """fc1 -> [bn1] -> act1 -> dropout -> fc2 -> [bn2] -> act2 -> dropout -> fc3, with the
    linears of collapsed junctions merged (each group named by its first linear)."""

    def __init__(self, architecture: dict) -> None:
        super().__init__()
        cfg = architecture["config"]
        activations: list[str] = architecture["activations"]
        self.groups = vgg_groups(cfg, architecture["collapsed"])
        self.order: list[str] = []
        for first, last, n_in, n_out in self.groups:
            setattr(self, f"fc{first}", nn.Linear(n_in, n_out))
            self.order.append(f"fc{first}")
            if last < 3:
                if cfg.get("head_batch_norm", False):
                    setattr(self, f"bn{last}", nn.BatchNorm1d(n_out))
                    self.order.append(f"bn{last}")
                act = ScalarPReLU() if activations[last - 1] == "prelu" else Activation(activations[last - 1])
                setattr(self, f"act{last}", act)
                setattr(self, f"drop{last}", nn.Dropout(float(cfg.get("dropout", 0))))
                self.order += [f"act{last}", f"drop{last}"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.order:
            x = getattr(self, name)(x)
        return x


class VGGModel(nn.Module):
    """Our `vgg`: torchvision's features (Conv2d 3×3 padding 1, [BatchNorm2d], ReLU, or
    MaxPool2d(2), numbered as torchvision numbers them), AdaptiveAvgPool2d, flatten, and
    the head (`VGGHead`)."""

    def __init__(self, architecture: dict) -> None:
        super().__init__()
        cfg = architecture["config"]
        layers: list[nn.Module] = []
        channels = int(cfg["image_channels"])
        for w in cfg["conv_layers"]:
            if w == 0:
                layers.append(nn.MaxPool2d(2))
                continue
            layers.append(nn.Conv2d(channels, int(w), kernel_size=3, padding=1))
            if cfg.get("conv_batch_norm", False):
                layers.append(nn.BatchNorm2d(int(w)))
            layers.append(nn.ReLU())
            channels = int(w)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(int(cfg["pooled_size"]))
        self.classifier = VGGHead(architecture)

    def forward(
        self, ids: torch.Tensor | None, valid: torch.Tensor | None, images: torch.Tensor | None
    ) -> torch.Tensor:
        if images is None:
            raise InputError("a vgg reads images: the bundle has no /input/images")
        return self.classifier(torch.flatten(self.avgpool(self.features(images)), 1))


def make_model(architecture: dict) -> nn.Module:
    """The family's PyTorch module for an architecture."""
    kind = architecture["config"]["kind"]
    if kind == "mixer":
        return MixerModel(architecture)
    if kind == "vgg":
        return VGGModel(architecture)
    return BertModel(architecture) if kind == "bert" else Model(architecture)


def unit_prefixes(architecture: dict) -> list[str]:
    """Each LayerCollapse unit's parameter prefix, in unit order (as `Architecture.unitName`)."""
    layers = int(architecture["config"]["layers"])
    if architecture["config"]["kind"] == "mixer":
        return [f"blocks.{i}.{m}." for i in range(layers) for m in ("token_mlp", "channel_mlp")]
    return [f"blocks.{i}.mlp." for i in range(layers)]


@dataclass
class Junction:
    """A VGG head's unit: the activation between two of its linears (none once merged)."""

    collapsed: bool
    act: nn.Module | None


def units(model: nn.Module) -> list:
    """The model's MLP modules (a VGG's head junctions) in unit order."""
    if isinstance(model, VGGModel):
        head = model.classifier
        return [Junction(not hasattr(head, f"act{j + 1}"), getattr(head, f"act{j + 1}", None)) for j in range(2)]
    if isinstance(model, MixerModel):
        return [m for b in model.blocks for m in (b.token_mlp, b.channel_mlp)]
    return [b.mlp for b in model.blocks]


def stored_shape(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """A parameter in the checkpoint's shape (the conv kernel flattened channel-major)."""
    if name == "patch_emb.weight":
        return tensor.reshape(tensor.shape[0], -1)
    return tensor


def build_model(architecture: dict, params: dict[str, np.ndarray], dtype: torch.dtype, where: str) -> nn.Module:
    """The PyTorch model of an architecture, loaded with params; names and shapes are checked."""
    model = make_model(architecture).to(dtype)
    names = dict(model.named_parameters())
    names.update(state_buffers(model))
    missing = sorted(set(names) - set(params))
    extra = sorted(set(params) - set(names))
    if missing or extra:
        raise InputError(f"{where}: parameters do not match the architecture: missing {missing}, unexpected {extra}")
    with torch.no_grad():
        for name, p in names.items():
            value = torch.from_numpy(np.asarray(params[name], dtype=np.float64)).to(dtype)
            expected = tuple(stored_shape(name, p).shape)
            if tuple(value.shape) != expected:
                raise InputError(f"{where}: {name} has shape {tuple(value.shape)}, the architecture says {expected}")
            p.copy_(value.reshape(p.shape))
    return model


def state_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Buffers a checkpoint stores (BatchNorm's running statistics; not its batch counter)."""
    return {n: b for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")}


Inputs = tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]


def model_inputs(bundle: Bundle, dtype: torch.dtype) -> Inputs:
    """(ids, valid, images) as the model's forward takes them."""
    ids = None if bundle.ids is None else torch.from_numpy(bundle.ids.astype(np.int64))
    valid = None if bundle.valid is None else torch.from_numpy(bundle.valid != 0)
    images = None if bundle.images is None else torch.from_numpy(bundle.images.astype(np.float64)).to(dtype)
    return ids, valid, images


def penalty_of(model: nn.Module, lam: float, selected: list[int]) -> torch.Tensor:
    """λ·Σ(α − 1)² over the selected units that still have an α."""
    total = torch.zeros((), dtype=next(model.parameters()).dtype)
    for i in selected:
        mlp = units(model)[i]
        if not mlp.collapsed and isinstance(mlp.act, ScalarPReLU):
            total = total + ((mlp.act.alpha - 1) ** 2).sum()
    return lam * total


# MARK: comparing


@dataclass
class Row:
    label: str
    shape: tuple[int, ...]
    ref_max: float
    diff_max: float
    measure: str  # how `value` is measured
    value: float
    limit: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return math.isfinite(self.value) and self.value <= self.limit


class Report:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.problems: list[str] = []

    def relative(self, label: str, ours: np.ndarray, ref: np.ndarray, tol: float, floor: float = TINY) -> None:
        """max|ours − ref| / max(max|ref|, floor) ≤ tol."""
        ours64 = np.asarray(ours, dtype=np.float64)
        ref64 = np.asarray(ref, dtype=np.float64)
        if ours64.shape != ref64.shape:
            self.problem(f"{label}: shape {ours64.shape} here, {ref64.shape} in PyTorch")
            return
        diff = float(np.max(np.abs(ours64 - ref64))) if ours64.size else 0.0
        scale = float(np.max(np.abs(ref64))) if ref64.size else 0.0
        rel = diff / max(scale, floor) if not math.isnan(diff) else math.inf
        self.rows.append(Row(label, ref64.shape, scale, diff, "Δ/max|ref|", rel, tol))

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def print(self, title: str) -> int:
        print(title)
        width = max([len(r.label) for r in self.rows] + [6])
        header = f"{'max|ref|':>10} {'max|Δ|':>10}  {'measure':<12}{'value':>10} {'limit':>9}  result"
        print(f"  {'tensor':<{width}}  {'shape':<12} {header}")
        for r in self.rows:
            shape = "x".join(str(s) for s in r.shape) or "scalar"
            result = "ok" if r.ok else "MISMATCH"
            note = f"  ({r.note})" if r.note else ""
            print(
                f"  {r.label:<{width}}  {shape:<12} {r.ref_max:>10.3e} {r.diff_max:>10.3e}  "
                f"{r.measure:<12}{r.value:>10.3e} {r.limit:>9.1e}  {result}{note}"
            )
        failed = [r.label for r in self.rows if not r.ok]
        for p in self.problems:
            print(f"  PROBLEM: {p}")
        counts = f"{len(self.rows)} tensors compared, {len(failed)} mismatched, {len(self.problems)} other problems"
        print(f"parity: {counts}")
        if failed:
            print("MISMATCH in: " + ", ".join(failed))
        return 0 if not failed and not self.problems else 1


# MARK: --check


def adamw_groups(model: nn.Module, settings: dict) -> list[dict]:
    """Our decay groups: 2-D (as stored) decays; α decays only in penalty mode, at lr·scale."""
    lr = float(settings["step_lr"])
    wd = float(settings["weight_decay"])
    decay: list[torch.Tensor] = []
    plain: list[torch.Tensor] = []
    alphas: list[torch.Tensor] = []
    for name, p in model.named_parameters():
        if name.endswith(".alpha"):
            alphas.append(p)
        elif stored_shape(name, p).dim() >= 2:  # matrices and convolution kernels
            decay.append(p)
        else:
            plain.append(p)
    groups = [{"params": decay, "weight_decay": wd, "lr": lr}, {"params": plain, "weight_decay": 0.0, "lr": lr}]
    if alphas:
        alpha_wd = wd if settings["mode"] == "penalty" else 0.0
        groups.append({"params": alphas, "weight_decay": alpha_wd, "lr": lr * float(settings["alpha_lr_scale"])})
    return groups


def check(checkpoint_path: str, bundle_path: str, dtype: torch.dtype) -> int:
    ckpt = read_checkpoint(checkpoint_path)
    bundle = read_bundle(bundle_path)
    s = bundle.settings
    model = build_model(ckpt.architecture, ckpt.params, dtype, checkpoint_path)
    report = Report()

    # forward, loss, penalty
    logits = model(*model_inputs(bundle, dtype))
    targets = torch.from_numpy(bundle.targets.astype(np.int64))
    loss = F.cross_entropy(logits, targets, ignore_index=-1)
    penalty = penalty_of(model, float(s["lambda"]), [int(b) for b in s["blocks"]])
    report.relative("logits", bundle.logits, logits.detach().numpy(), LOGIT_TOL)
    report.relative("loss", np.array(bundle.loss), loss.detach().numpy(), LOGIT_TOL)
    report.relative("penalty", np.array(bundle.penalty), penalty.detach().numpy(), LOGIT_TOL)

    # gradients
    total = loss + penalty if s["mode"] == "penalty" else loss
    total.backward()
    params = dict(model.named_parameters())
    ref_grads: dict[str, np.ndarray] = {}
    for name, p in params.items():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        ref_grads[name] = stored_shape(name, g).detach().numpy().copy()
    # A tensor whose gradient is zero up to rounding (the Mixer's token-MLP output bias,
    # which every LayerNorm after it removes) is held to the model's gradient scale.
    grad_floor = GRAD_FLOOR * max(float(np.max(np.abs(g))) for g in ref_grads.values())
    for name in params:
        if name not in bundle.grads:
            report.problem(f"grad {name}: not in the bundle")
            continue
        report.relative(f"grad {name}", bundle.grads[name], ref_grads[name], GRAD_TOL, floor=grad_floor)
    for name in sorted(set(bundle.grads) - set(params)):
        report.problem(f"grad {name}: in the bundle but not a parameter of the model")

    # one training step
    if bundle.updated:
        step(model, s, bundle, ref_grads, report)
    return report.print(f"check {checkpoint_path} against {bundle_path} (PyTorch {torch.__version__}, {dtype})")


def step(model: nn.Module, s: dict, bundle: Bundle, ref_grads: dict[str, np.ndarray], report: Report) -> None:
    """Clip, decoupled pull, AdamW: what one Trainer step does; compares every parameter."""
    params = dict(model.named_parameters())
    lr = float(s["step_lr"])
    alpha_lr = lr * float(s["alpha_lr_scale"])
    clip_scale = 1.0
    if float(s["grad_clip"]) > 0:
        norm = float(torch.nn.utils.clip_grad_norm_(list(params.values()), float(s["grad_clip"])))
        clip_scale = min(1.0, float(s["grad_clip"]) / (norm + 1e-6))
    eps = float(s["eps"])
    if s["mode"] == "decoupled":
        lam = float(s["lambda"])
        with torch.no_grad():
            for i in s["blocks"]:
                mlp = units(model)[int(i)]
                if not mlp.collapsed and isinstance(mlp.act, ScalarPReLU):
                    a = mlp.act.alpha
                    a.copy_(a - 2 * alpha_lr * lam * (a - 1))
    optimizer = torch.optim.AdamW(
        adamw_groups(model, s), betas=(float(s["beta1"]), float(s["beta2"])), eps=float(s["eps"])
    )
    optimizer.step()
    for name, p in params.items():
        label = f"step {name}"
        if name not in bundle.updated:
            report.problem(f"{label}: not in the bundle")
            continue
        ours = np.asarray(bundle.updated[name], dtype=np.float64)
        ref = stored_shape(name, p).detach().numpy().astype(np.float64)
        if ours.shape != ref.shape:
            report.problem(f"{label}: shape {ours.shape} here, {ref.shape} in PyTorch")
            continue
        t_lr = alpha_lr if name.endswith(".alpha") else lr
        ref_max = float(np.max(np.abs(ref)))
        base = STEP_LR_TOL * t_lr + STEP_PARAM_TOL * ref_max
        # The step difference the measured gradient disagreement alone explains (first
        # AdamW step: m̂/(√v̂ + eps) = g/(|g| + eps) on the clipped gradient).
        g_ref = ref_grads[name].astype(np.float64) * clip_scale
        g_ours = np.asarray(bundle.grads.get(name, ref_grads[name]), dtype=np.float64) * clip_scale
        explained = np.abs(g_ours / (np.abs(g_ours) + eps) - g_ref / (np.abs(g_ref) + eps)) * t_lr
        sensitive = 2 * explained > 0.5 * base
        diff = np.abs(ours - ref)
        excess = np.maximum(diff - 2 * explained, 0.0)
        worst = float(np.max(excess))
        note = f"{int(sensitive.sum())} sensitive to gradient rounding" if sensitive.any() else ""
        report.rows.append(Row(label, ref.shape, ref_max, float(np.max(diff)), "Δ/lr", worst / t_lr, base / t_lr, note))
    # BatchNorm's running statistics after the step's one training forward (PyTorch's
    # momentum 0.1 and unbiased running variance).
    buffers = state_buffers(model)
    for name, b in buffers.items():
        if name not in bundle.updated:
            report.problem(f"running statistic {name}: not in the bundle")
            continue
        report.relative(f"running {name}", bundle.updated[name], b.detach().numpy(), MERGE_TOL)
    for name in sorted(set(bundle.updated) - set(params) - set(buffers)):
        report.problem(f"step {name}: in the bundle but not a parameter of the model")


# MARK: --collapse-check


def collapse_check(uncollapsed_path: str, collapsed_path: str, bundle_path: str, dtype: torch.dtype) -> int:
    u = read_checkpoint(uncollapsed_path)
    c = read_checkpoint(collapsed_path)
    bundle = read_bundle(bundle_path)
    report = Report()
    if u.config != c.config:
        report.problem("the two checkpoints have different model configs")
    uc: list[bool] = u.architecture["collapsed"]
    cc: list[bool] = c.architecture["collapsed"]
    merge = [i for i in range(len(cc)) if cc[i] and not uc[i]]
    for i in range(len(uc)):
        if uc[i] and not cc[i]:
            report.problem(f"unit {i} is collapsed in {uncollapsed_path} but not in {collapsed_path}")
    if not merge:
        report.problem("no unit to merge: the collapsed checkpoint collapses nothing new")
    if u.config.get("kind") == "vgg":
        params, merged_names = vgg_merge(u, c)
        merged_units = ", ".join(f"classifier.act{i + 1}" for i in merge) or "none"
    else:
        params, merged_names = mlp_merge(u, merge)
        prefixes = unit_prefixes(u.architecture)
        merged_units = ", ".join(prefixes[i].rstrip(".") for i in merge) or "none"

    for name in sorted(c.params):
        if name not in params:
            report.problem(f"{name}: in {collapsed_path} but not produced by the merge")
        elif name in merged_names:
            report.relative(f"merged {name}", c.params[name], params[name], MERGE_TOL)
        elif not np.array_equal(c.params[name].astype(np.float64), params[name]):
            report.problem(f"{name}: differs from {uncollapsed_path}'s (a copied tensor must be equal)")

    model = build_model(c.architecture, params, dtype, f"merge of {uncollapsed_path}")
    model.eval()  # a collapsed model is evaluated: BatchNorm with its running statistics
    with torch.no_grad():
        logits = model(*model_inputs(bundle, dtype))
    report.relative("collapsed logits", bundle.logits, logits.numpy(), LOGIT_TOL)
    return report.print(
        f"collapse {uncollapsed_path} ({merged_units}) in PyTorch and compare with {collapsed_path}, {bundle_path}"
        f" (PyTorch {torch.__version__}, {dtype})"
    )


def mlp_merge(u: Checkpoint, merge: list[int]) -> tuple[dict[str, np.ndarray], set[str]]:
    """The collapsed parameters of MLP units (fc1 -> act -> fc2 into one `linear`):
    W = W2 @ W1, b = W2 @ b1 + b2; every other tensor as it is."""
    prefixes = unit_prefixes(u.architecture)
    merged_prefixes = tuple(prefixes[i] for i in merge)
    params: dict[str, np.ndarray] = {}
    merged_names: set[str] = set()
    for name, value in u.params.items():
        if not name.startswith(merged_prefixes):
            params[name] = np.asarray(value, dtype=np.float64)
    for i in merge:
        p = prefixes[i]
        w1 = torch.from_numpy(u.params[p + "fc1.weight"].astype(np.float64))  # (h, d)
        b1 = torch.from_numpy(u.params[p + "fc1.bias"].astype(np.float64))
        w2 = torch.from_numpy(u.params[p + "fc2.weight"].astype(np.float64))  # (d, h)
        b2 = torch.from_numpy(u.params[p + "fc2.bias"].astype(np.float64))
        params[p + "linear.weight"] = (w2 @ w1).numpy()
        params[p + "linear.bias"] = (w2 @ b1 + b2).numpy()
        merged_names.update([p + "linear.weight", p + "linear.bias"])
    return params, merged_names


def vgg_merge(u: Checkpoint, c: Checkpoint) -> tuple[dict[str, np.ndarray], set[str]]:
    """The collapsed VGG's parameters from the uncollapsed one: each of the collapsed
    head's groups is the composition of the linears it spans, a BatchNorm1d between two of
    them folded in first (s = γ/√(running_var + 1e-5), W' = s·W, b' = s·(b − running_mean) + β);
    the trunk and the remaining BatchNorms and slopes as they are."""
    params = {n: np.asarray(v, dtype=np.float64) for n, v in u.params.items() if not n.startswith("classifier.")}
    merged_names: set[str] = set()
    before = vgg_groups(u.config, u.architecture["collapsed"])
    for first, last, _, _ in vgg_groups(c.config, c.architecture["collapsed"]):
        members = [g for g in before if first <= g[0] and g[1] <= last]
        w = torch.from_numpy(u.params[f"classifier.fc{members[0][0]}.weight"].astype(np.float64))
        b = torch.from_numpy(u.params[f"classifier.fc{members[0][0]}.bias"].astype(np.float64))
        for previous, g in zip(members, members[1:]):
            bn = f"classifier.bn{previous[1]}."
            if bn + "weight" in u.params:
                scale = torch.from_numpy(u.params[bn + "weight"].astype(np.float64)) / torch.sqrt(
                    torch.from_numpy(u.params[bn + "running_var"].astype(np.float64)) + 1e-5
                )
                mean = torch.from_numpy(u.params[bn + "running_mean"].astype(np.float64))
                shift = torch.from_numpy(u.params[bn + "bias"].astype(np.float64))
                w, b = scale[:, None] * w, scale * (b - mean) + shift
            w2 = torch.from_numpy(u.params[f"classifier.fc{g[0]}.weight"].astype(np.float64))
            b2 = torch.from_numpy(u.params[f"classifier.fc{g[0]}.bias"].astype(np.float64))
            w, b = w2 @ w, w2 @ b + b2
        params[f"classifier.fc{first}.weight"], params[f"classifier.fc{first}.bias"] = w.numpy(), b.numpy()
        if len(members) > 1:
            merged_names.update([f"classifier.fc{first}.weight", f"classifier.fc{first}.bias"])
        for name, value in u.params.items():
            if name.startswith((f"classifier.bn{last}.", f"classifier.act{last}.")) and last < 3:
                params[name] = np.asarray(value, dtype=np.float64)
    return params, merged_names


# MARK: summary mode


def summary(checkpoint_path: str, dtype: torch.dtype) -> int:
    ckpt = read_checkpoint(checkpoint_path)
    model = build_model(ckpt.architecture, ckpt.params, dtype, checkpoint_path)
    cfg = ckpt.config
    print(f"{checkpoint_path}: {cfg['kind']}, d_model {cfg['d_model']}, {cfg['layers']} blocks")
    print(f"  activations {ckpt.architecture['activations']}, collapsed {ckpt.architecture['collapsed']}")
    total = 0
    for name, p in model.named_parameters():
        total += p.numel()
        print(f"  {name:<32} {tuple(stored_shape(name, p).shape)}")
    print(f"  {total} parameters, rebuilt in PyTorch {torch.__version__}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="torch_reference.py",
        description="Rebuild a layercollapse checkpoint in PyTorch and check our logits, gradients,\n"
        "training step and collapse against it.\n"
        "Exit 0: all agree; 1: a mismatch; 2: usage or file error.",
        epilog="Examples:\n"
        "  torch_reference.py runs/x/last.h5\n"
        "  torch_reference.py model.h5 --check bundle.h5\n"
        "  torch_reference.py --collapse-check model.h5 collapsed.h5 collapsed-bundle.h5\n"
        "Tolerances and the bundle layout are in this script's docstring.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", nargs="?", help="a layercollapse checkpoint (.h5)")
    parser.add_argument("--check", metavar="BUNDLE", help="compare the parity bundle written for CHECKPOINT")
    parser.add_argument(
        "--collapse-check",
        nargs=3,
        metavar=("UNCOLLAPSED", "COLLAPSED", "BUNDLE"),
        help="collapse UNCOLLAPSED in PyTorch as COLLAPSED marks, compare weights and BUNDLE's logits",
    )
    parser.add_argument(
        "--dtype", choices=["float64", "float32"], default="float64", help="PyTorch's precision (default float64)"
    )
    args = parser.parse_args(argv)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    if args.collapse_check and (args.checkpoint or args.check):
        parser.error("--collapse-check takes its three files and no CHECKPOINT or --check")
    if not args.collapse_check and not args.checkpoint:
        parser.error("give a CHECKPOINT (with or without --check BUNDLE) or --collapse-check")
    try:
        if args.collapse_check:
            return collapse_check(*args.collapse_check, dtype)
        if args.check:
            return check(args.checkpoint, args.check, dtype)
        return summary(args.checkpoint, dtype)
    except (InputError, KeyError) as e:
        print(f"torch_reference.py: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
