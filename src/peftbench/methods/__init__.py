"""Every fine-tuning method, registered in METHODS (peftbench.methods.base) by its own module below.
A new method is one module here plus its name in this list."""

from peftbench.methods import bitfit, freeze, full, head, peft_methods
from peftbench.methods.base import (
    METHODS,
    Method,
    MethodContext,
    check_quantized_base,
    head_parameters_in,
    no_callbacks,
    prepare_model,
    validate_method,
)

__all__ = [
    "METHODS",
    "Method",
    "MethodContext",
    "check_quantized_base",
    "bitfit",
    "freeze",
    "full",
    "head",
    "head_parameters_in",
    "no_callbacks",
    "peft_methods",
    "prepare_model",
    "validate_method",
]
