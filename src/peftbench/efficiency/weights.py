"""Weight bytes of a model as it would train: every parameter at its dtype, except the linear layers that a
bitsandbytes quantisation (model.quantization) would replace, which are counted as the packed integers and
scales bitsandbytes stores (checked against a real 4-bit and 8-bit load in tests/test_memory_estimate.py)."""

import math

from torch import nn
from transformers.quantizers.base import get_keys_to_not_convert

from peftbench.config import QuantizationConfig

NF4_BLOCK = 64  # elements per absmax scale
NESTED_BLOCK = 256  # double quantisation: scales per second-level fp32 scale


def _four_bit(n: int, double_quant: bool) -> int:
    blocks = math.ceil(n / NF4_BLOCK)
    if not double_quant:
        return n // 2 + blocks * 4
    return n // 2 + blocks + math.ceil(blocks / NESTED_BLOCK) * 4


def _eight_bit(weight) -> int:
    return weight.numel() + weight.shape[0] * 4  # int8 weights + one fp32 scale per output row


def quantised_weights(model: nn.Module) -> set[int]:
    """Identities of the linear weights transformers' bitsandbytes quantiser converts: all but the output
    embeddings, tied weights and the last module (the head), as transformers decides it. Call on the base
    model before a method wraps it (adapter layers are linear too, and stay unquantised)."""
    skip = get_keys_to_not_convert(model)
    return {
        id(module.weight)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and not any(name == k or name.startswith(k + ".") for k in skip)
    }


def weight_bytes(model: nn.Module, quantization: QuantizationConfig | None, quantised: set[int]) -> int:
    """Bytes of the model's weights; those in `quantised` at k bits when `quantization` is set."""
    total = 0
    for parameter in model.parameters():
        if quantization is None or id(parameter) not in quantised:
            total += parameter.numel() * parameter.element_size()
        elif quantization.bits == 4:
            total += _four_bit(parameter.numel(), quantization.double_quant)
        else:
            total += _eight_bit(parameter)
    return total
