"""Weight bytes of a model as it would train: every parameter at its dtype, except on a bitsandbytes-quantised
base (model.quantization), whose converted linear layers count as the packed integers and scales bitsandbytes
stores and whose other 16-bit weights count at fp32, as PEFT's k-bit preparation casts them (checked against a
real 4-bit and 8-bit load in tests/test_memory_estimate.py)."""

import math

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D
from transformers.quantizers.base import get_keys_to_not_convert

from peftbench.config.config import QuantizationConfig

NF4_BLOCK = 64  # elements per absmax scale
NESTED_BLOCK = 256  # double quantisation: scales per second-level fp32 scale
HALF = (torch.float16, torch.bfloat16)


def _four_bit(n: int, double_quant: bool) -> int:
    blocks = math.ceil(n / NF4_BLOCK)
    if not double_quant:
        return n // 2 + blocks * 4
    return n // 2 + blocks + math.ceil(blocks / NESTED_BLOCK) * 4


def _eight_bit(n: int, out_features: int) -> int:
    return n + out_features * 4  # int8 weights + one fp32 scale per output row


def _converted(module: nn.Module) -> bool:
    """What transformers' replace_with_bnb_linear converts: plain linears and GPT-2's Conv1D."""
    return type(module) is nn.Linear or isinstance(module, Conv1D)


def _out_features(module: nn.Module) -> int:
    return module.weight.shape[1] if isinstance(module, Conv1D) else module.weight.shape[0]


def quantised_weights(model: nn.Module) -> set[int]:
    """Identities of the linear weights transformers' bitsandbytes quantiser converts: all but the output
    embeddings, tied weights and the last module (the head), as transformers decides it. Call on the base
    model before a method wraps it (adapter layers are linear too, and stay unquantised)."""
    skip = get_keys_to_not_convert(model)
    return {
        id(module.weight)
        for name, module in model.named_modules()
        if _converted(module) and not any(name == k or name.startswith(k + ".") for k in skip)
    }


def stored_size(parameter: torch.Tensor, quantization: QuantizationConfig | None) -> int:
    """Bytes per element of an unquantised parameter: fp32 on a k-bit base for 16-bit ones (PEFT's k-bit
    preparation casts them), else its own dtype."""
    if quantization is not None and parameter.dtype in HALF:
        return 4
    return parameter.element_size()


def weight_bytes(model: nn.Module, quantization: QuantizationConfig | None, quantised: set[int]) -> int:
    """Bytes of the model's weights; those in `quantised` at k bits when `quantization` is set."""
    rows = {
        id(m.weight): _out_features(m) for m in model.modules() if id(getattr(m, "weight", None)) in quantised
    }
    total = 0
    for parameter in model.parameters():
        if quantization is None or id(parameter) not in quantised:
            total += parameter.numel() * stored_size(parameter, quantization)
        elif quantization.bits == 4:
            total += _four_bit(parameter.numel(), quantization.double_quant)
        else:
            total += _eight_bit(parameter.numel(), rows[id(parameter)])
    return total
