"""Bytes of optimizer state per trainable tensor, for the Trainer's optimizers (training.optim), as the
libraries allocate them: torch keeps its states at the parameter's dtype; bitsandbytes' 8-bit optimizers
keep one byte per element plus an fp32 scale per block of 256, but full fp32 states for tensors under 4,096
elements; Adafactor keeps a row and a column vector per matrix instead of a full second moment."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the CLI imports this module for every command, --help included
    import torch

BNB_BLOCK = 256
BNB_MIN_8BIT = 4096  # bitsandbytes' min_8bit_size: smaller tensors keep 32-bit states
BNB_QMAPS = 2 * 256 * 4  # two shared 256-entry fp32 quantisation maps

# optim -> number of full-size states (first/second moments, ...)
STATES = {
    "sgd": 0,  # the Trainer's SGD has no momentum unless optim_args sets it
    "adagrad": 1,
    "rmsprop": 1,
    "lion": 1,
    "ademamix": 3,
}
ADAFACTOR = ("adafactor",)


def _states(optim: str) -> int:
    family = next((name for name in STATES if name in optim), None)
    return 2 if family is None else STATES[family]  # AdamW and its kin: exp_avg, exp_avg_sq


def _bnb_8bit(optim: str) -> bool:
    return "8bit" in optim and "torch" not in optim and "galore" not in optim


def _factored(tensor: torch.Tensor) -> int:
    """Adafactor (beta1 None, as the Trainer builds it): row and column sums of a matrix, else a full
    second moment, in fp32."""
    if tensor.dim() < 2:
        return tensor.numel() * 4
    shape = tensor.shape
    rows = math.prod(shape[:-1])
    cols = math.prod(shape[:-2]) * shape[-1]
    return (rows + cols) * 4


def _bnb(tensor: torch.Tensor, states: int) -> int:
    n = tensor.numel()
    if n < BNB_MIN_8BIT:
        return states * n * 4
    return states * (n + math.ceil(n / BNB_BLOCK) * 4)


def state_bytes(trainable: list[torch.Tensor], optim: str) -> int:
    """Optimizer state of `trainable` under `optim` (step counters and other scalars not counted)."""
    if optim in ADAFACTOR:
        return sum(_factored(t) for t in trainable)
    states = _states(optim)
    if _bnb_8bit(optim):
        quantised = any(t.numel() >= BNB_MIN_8BIT for t in trainable)
        return sum(_bnb(t, states) for t in trainable) + (BNB_QMAPS if quantised else 0)
    if "4bit" in optim or "8bit" in optim:  # torchao / GaLore low-bit states, roughly
        bits = 4 if "4bit" in optim else 8
        return sum(states * t.numel() * bits // 8 for t in trainable)
    return sum(states * t.numel() * t.element_size() for t in trainable)


def describe(optim: str) -> str:
    if optim in ADAFACTOR:
        return f"{optim}: factored second moment, rows + columns per matrix, fp32"
    if _bnb_8bit(optim):
        per_element = f"1 byte/element + an fp32 scale per {BNB_BLOCK} (fp32 under {BNB_MIN_8BIT} elements)"
        return f"{optim}: {_states(optim)} states, {per_element}"
    return f"{optim}: {_states(optim)} states per trainable parameter at its dtype"
