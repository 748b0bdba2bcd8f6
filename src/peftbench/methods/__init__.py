"""One registry for every fine-tuning method. A method only decides which weights train;
training, evaluation and measurement are the same code for all of them."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from peft import TaskType
from torch import nn

from peftbench.config import MethodConfig
from peftbench.errors import PeftbenchError
from peftbench.registry import Registry


@dataclass(frozen=True)
class MethodContext:
    """What a method may need beyond its options: the model's origin, the task's head, training length."""

    model_path: str
    tokenizer_kwargs: dict
    num_training_steps: int
    peft_task_type: TaskType = TaskType.SEQ_CLS
    head_parameters: frozenset[str] = frozenset()  # what the `head` method trains
    fresh_head: bool = True  # a new head that every method must train (classification)


@dataclass(frozen=True)
class Method:
    summary: str
    ships: Literal["model", "trainable", "adapter"]
    validate: Callable[[dict], Any]
    prepare: Callable[[nn.Module, Any, MethodContext], nn.Module]


METHODS: Registry[Method] = Registry("method")


def validate_method(entry: MethodConfig) -> Any:
    return METHODS.get(entry.method).validate(entry.options)


def prepare_model(model: nn.Module, entry: MethodConfig, context: MethodContext) -> nn.Module:
    method = METHODS.get(entry.method)
    options = method.validate(entry.options)
    try:
        prepared = method.prepare(model, options, context)
    except PeftbenchError:
        raise
    except (ValueError, TypeError, AttributeError, NotImplementedError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise PeftbenchError(
            f"method '{entry.method}' does not fit model {type(model).__name__}: {first}; "
            "pick another method or adjust its options"
        ) from exc
    if not any(p.requires_grad for p in prepared.parameters()):
        raise PeftbenchError(
            f"method '{entry.method}' leaves nothing to train in {type(model).__name__} "
            "(e.g. bitfit on a model without bias terms); pick another method"
        )
    return prepared


from peftbench.methods import bitfit, freeze, full, head, peft_methods  # noqa: E402,F401  (registrations)
