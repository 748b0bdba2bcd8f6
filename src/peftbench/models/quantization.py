"""A k-bit base model (bitsandbytes): the load-time config, PEFT's k-bit preparation, and the rule that
only adapters train on it. bitsandbytes >= 0.45 runs 4- and 8-bit layers on CPUs as well as GPUs."""

import importlib.util

import torch
from torch import nn

from peftbench.config.config import QuantizationConfig
from peftbench.errors import PeftbenchError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def _require_bitsandbytes() -> None:
    if importlib.util.find_spec("bitsandbytes") is None:
        raise PeftbenchError(
            "model.quantization needs the bitsandbytes package; run: pip install bitsandbytes "
            "(or drop model.quantization)"
        )


def load_kwargs(quantization: QuantizationConfig | None) -> dict:
    """from_pretrained's quantization_config for `quantization` ({} when the base stays unquantised)."""
    if quantization is None:
        return {}
    _require_bitsandbytes()
    from transformers import BitsAndBytesConfig

    if quantization.bits == 8:
        return {"quantization_config": BitsAndBytesConfig(load_in_8bit=True)}
    return {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=quantization.type,
            bnb_4bit_use_double_quant=quantization.double_quant,
            bnb_4bit_compute_dtype=DTYPES[quantization.compute_dtype],
        )
    }


def prepare(model: nn.Module, quantization: QuantizationConfig | None) -> nn.Module:
    """PEFT's k-bit preparation: base frozen, its unquantised weights in fp32. Gradient checkpointing is
    left to the Trainer (training.gradient_checkpointing), so it is on only when asked for.

    On CPUs with AVX512-BF16, bitsandbytes repacks a 4-bit layer's weight for its inference kernel on the
    first forward pass in eval mode without gradients (an evaluation), and every later pass, training
    included, goes through that kernel, which has no backward: no gradient reaches the adapters after the
    first evaluation, silently. The repacking is turned off, so evaluation and training share the
    differentiable path (it also needs out_features divisible by 32, which small models miss)."""
    if quantization is None:
        return model
    from peft import prepare_model_for_kbit_training

    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def used(quantization: QuantizationConfig | None) -> dict | None:
    """What result.json records: the settings and the library that quantised the weights."""
    if quantization is None:
        return None
    from importlib.metadata import version

    return {**quantization.model_dump(), "library": f"bitsandbytes {version('bitsandbytes')}"}
