"""Partial fine-tuning: embeddings and the first N transformer blocks frozen, the rest trained."""

from pydantic import Field
from torch import nn

from peftbench.errors import PeftbenchError
from peftbench.methods import METHODS, Method
from peftbench.methods.common import Options, options_validator, train_only


class FreezeOptions(Options):
    frozen_layers: int = Field(
        2, ge=0, description="How many transformer blocks, from the bottom, stay frozen"
    )
    freeze_embeddings: bool = True


def block_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The ModuleList holding the transformer blocks (one entry per hidden layer)."""
    count = getattr(model.config, "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return name, module
    raise PeftbenchError(
        f"cannot find the {count} transformer blocks in {type(model).__name__}; "
        "method 'freeze' needs a model with a list of layers"
    )


def prepare(model: nn.Module, options: FreezeOptions, context) -> nn.Module:
    prefix, blocks = block_list(model)
    if options.frozen_layers > len(blocks):
        raise PeftbenchError(
            f"method 'freeze': frozen_layers={options.frozen_layers} but the model has "
            f"{len(blocks)} layers; choose at most {len(blocks)}"
        )
    frozen_prefixes = tuple(f"{prefix}.{i}." for i in range(options.frozen_layers))

    def keep(name: str) -> bool:
        if options.freeze_embeddings and "embed" in name:
            return False
        return not name.startswith(frozen_prefixes)

    return train_only(model, keep, context)


METHODS.register("freeze")(
    Method(
        summary="all but the embeddings and the first `frozen_layers` blocks (partial fine-tuning)",
        ships="trainable",
        validate=options_validator(FreezeOptions, "freeze"),
        prepare=prepare,
    )
)
