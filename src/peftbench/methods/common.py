"""Helpers shared by the weight-selecting methods (full, freeze, bitfit, head)."""

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from peftbench.config.schema import explain
from peftbench.errors import PeftbenchError


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


def options_validator(options_cls: type[Options], method: str):
    def validate(options: dict) -> Any:
        try:
            return options_cls.model_validate(options)
        except ValidationError as exc:
            raise PeftbenchError(f"method '{method}': {explain(exc, options_cls)}") from None

    return validate


def train_only(model: nn.Module, keep: Callable[[str], bool], context) -> nn.Module:
    """Freeze everything except parameters where keep(name) is true, plus a fresh task head."""
    head = head_parameter_names(model, context.head_modules) if context.fresh_head else frozenset()
    for name, param in model.named_parameters():
        param.requires_grad = bool(keep(name)) or name in head
    return model


def head_parameter_names(model: nn.Module, head_modules: tuple[str, ...]) -> frozenset[str]:
    """Names of the parameters inside the task's head modules: what the `head` method trains."""
    return parameters_of(model, [model.get_submodule(name) for name in head_modules])


def parameters_of(model: nn.Module, modules: list[nn.Module]) -> frozenset[str]:
    """Parameter names of `modules` inside `model`, found by identity (so tied weights are found too)."""
    wanted = {id(p) for module in modules for p in module.parameters()}
    return frozenset(name for name, p in model.named_parameters() if id(p) in wanted)
