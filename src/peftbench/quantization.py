"""A k-bit base model (bitsandbytes): the load-time config, PEFT's k-bit preparation, and the rule that
only adapters train on it. bitsandbytes >= 0.45 runs 4- and 8-bit layers on CPUs as well as GPUs."""

import importlib.util

import torch
from torch import nn

from peftbench.config import ExperimentConfig, QuantizationConfig
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
    left to the Trainer (training.gradient_checkpointing), so it is on only when asked for."""
    if quantization is None:
        return model
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def check_method(method: str, quantization: QuantizationConfig | None) -> None:
    """A quantised base trains only through adapters: its own weights are 4/8-bit integers."""
    from peftbench.methods import METHODS

    if quantization is not None and METHODS.get(method).ships != "adapter":
        raise PeftbenchError(
            f"method '{method}' trains the base model's own weights, which model.quantization stores as "
            f"{quantization.bits}-bit integers; use an adapter method on a quantised base (lora, "
            "lora:use_dora=true, ...) or drop model.quantization for this method"
        )


def check_methods(config: ExperimentConfig) -> None:
    from peftbench.grid import expand_methods

    for entry in expand_methods(config.methods):
        check_method(entry.method, config.model.quantization)


def used(quantization: QuantizationConfig | None) -> dict | None:
    """What result.json records: the settings and the library that quantised the weights."""
    if quantization is None:
        return None
    from importlib.metadata import version

    return {**quantization.model_dump(), "library": f"bitsandbytes {version('bitsandbytes')}"}
