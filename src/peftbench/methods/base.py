"""The method registry and what a method is: it only decides which weights train; training, evaluation
and measurement are the same code for all of them."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from peft import PeftModel, TaskType
from torch import nn
from transformers import TrainerCallback

from peftbench.config.config import MethodConfig, QuantizationConfig
from peftbench.config.registry import Registry
from peftbench.errors import PeftbenchError, first_line


@dataclass(frozen=True)
class MethodContext:
    """What a method may need beyond its options: the model's origin, the task's head, training length."""

    model_path: str
    tokenizer_kwargs: dict
    num_training_steps: int
    peft_task_type: TaskType = TaskType.SEQ_CLS
    head_modules: tuple[str, ...] = ()  # the task head (PEFT's modules_to_save; what `head` trains)
    fresh_head: bool = True  # a new head that every method must train (classification)


def no_callbacks(model: nn.Module) -> list[TrainerCallback]:
    return []


@dataclass(frozen=True)
class Method:
    summary: str
    saved_as: Literal["model", "trainable", "adapter"]  # what a run saves as its artifact
    validate: Callable[[dict], Any]
    prepare: Callable[[nn.Module, Any, MethodContext], nn.Module]
    # Trainer callbacks the method needs while training (AdaLoRA's rank allocation), given the prepared model
    callbacks: Callable[[nn.Module], list[TrainerCallback]] = no_callbacks


METHODS: Registry[Method] = Registry("method")


def validate_method(entry: MethodConfig) -> Any:
    return METHODS.get(entry.method).validate(entry.options)


def head_parameters_in(model: nn.Module, head_modules: tuple[str, ...]) -> list[nn.Parameter]:
    """The trainable parameters inside the task head of a prepared model (PEFT's trainable copies included),
    found by identity so that a head tied to the embeddings is counted once."""
    inner = model.get_base_model() if isinstance(model, PeftModel) else model
    found = {id(p): p for name in head_modules for p in inner.get_submodule(name).parameters()}
    return [p for p in found.values() if p.requires_grad]


def _check_head_trains(model: nn.Module, method: str, context: MethodContext) -> None:
    if context.fresh_head and context.head_modules and not head_parameters_in(model, context.head_modules):
        raise PeftbenchError(
            f"method '{method}' leaves the fresh task head ({', '.join(context.head_modules)}) untrained; "
            "pick another method"
        )


def prepare_model(model: nn.Module, entry: MethodConfig, context: MethodContext) -> nn.Module:
    method = METHODS.get(entry.method)
    options = method.validate(entry.options)
    try:
        prepared = method.prepare(model, options, context)
    except PeftbenchError:
        raise
    except (ValueError, TypeError, AttributeError, NotImplementedError, KeyError) as exc:
        raise PeftbenchError(
            f"method '{entry.method}' does not fit model {type(model).__name__}: "
            f"{first_line(exc, limit=300)}; "
            "pick another method or adjust its options"
        ) from exc
    if not any(p.requires_grad for p in prepared.parameters()):
        raise PeftbenchError(
            f"method '{entry.method}' leaves nothing to train in {type(model).__name__} "
            "(e.g. bitfit on a model without bias terms); pick another method"
        )
    _check_head_trains(prepared, entry.method, context)
    return prepared


def check_quantized_base(method: str, quantization: QuantizationConfig | None) -> None:
    """A quantised base trains only through adapters: its own weights are 4/8-bit integers."""
    if quantization is not None and METHODS.get(method).saved_as != "adapter":
        raise PeftbenchError(
            f"method '{method}' trains the base model's own weights, which model.quantization stores as "
            f"{quantization.bits}-bit integers; use an adapter method on a quantised base (lora, "
            "lora:use_dora=true, ...) or drop model.quantization for this method"
        )
