"""Helpers shared by the weight-selecting methods (full, freeze, bitfit, head)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from peftbench.errors import PeftbenchError

HEAD_NAMES = ("classifier", "score", "classification_head")


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


def options_validator(options_cls: type[Options], method: str):
    def validate(options: dict) -> Any:
        try:
            return options_cls.model_validate(options)
        except ValidationError as exc:
            from peftbench.config import explain

            raise PeftbenchError(f"method '{method}': {explain(exc, options_cls)}") from None

    return validate


def head_modules(model: nn.Module) -> list[nn.Module]:
    heads = [module for name, module in model.named_children() if name in HEAD_NAMES]
    if not heads:
        raise PeftbenchError(
            f"no classification head ({', '.join(HEAD_NAMES)}) found in {type(model).__name__}"
        )
    return heads


def train_only(model: nn.Module, keep: callable) -> nn.Module:
    """Freeze everything except parameters where keep(name) is true, plus the classification head."""
    for name, param in model.named_parameters():
        param.requires_grad = bool(keep(name))
    for head in head_modules(model):
        for param in head.parameters():
            param.requires_grad = True
    return model
