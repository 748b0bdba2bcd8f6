"""Partial fine-tuning: embeddings and the first N transformer blocks frozen, the rest trained."""

from pydantic import Field
from torch import nn

from peftbench.errors import PeftbenchError
from peftbench.methods.base import METHODS, Method
from peftbench.methods.common import Options, options_validator, parameters_of, train_only

LAYER_COUNTS = ("num_hidden_layers", "num_decoder_layers", "encoder_layers", "decoder_layers")


class FreezeOptions(Options):
    frozen_layers: int = Field(
        2, ge=0, description="How many transformer blocks, from the bottom of each stack, stay frozen"
    )
    freeze_embeddings: bool = True


def block_lists(model: nn.Module) -> dict[str, nn.ModuleList]:
    """Every stack of transformer blocks: the outermost ModuleLists as long as a layer count of the config
    (one for encoder-only and decoder-only models, the encoder's and the decoder's for T5/BART)."""
    counts = {getattr(model.config, key, None) for key in LAYER_COUNTS} - {None}
    stacks: dict[str, nn.ModuleList] = {}
    for name, module in model.named_modules():
        inside = any(name.startswith(f"{stack}.") for stack in stacks)
        if isinstance(module, nn.ModuleList) and len(module) in counts and not inside:
            stacks[name] = module
    if not stacks:
        raise PeftbenchError(
            f"cannot find the transformer blocks in {type(model).__name__}; "
            "method 'freeze' needs a model with a list of layers"
        )
    return stacks


def embedding_modules(model: nn.Module, stacks: dict[str, nn.ModuleList]) -> list[nn.Module]:
    """The input embeddings (the model's own get_input_embeddings), every other embedding table outside the
    blocks (positions, token types: GPT-2 `wpe`, BART `embed_positions`), and the module grouping them with
    their norm where the model has one (BERT's `embeddings`)."""
    tokens = model.get_input_embeddings()
    found = [tokens]
    for name, module in model.named_modules():
        in_block = any(name.startswith(f"{stack}.") for stack in stacks)
        if isinstance(module, nn.Embedding) and not in_block:
            found.append(module)
        holds_blocks = any(stack.startswith(f"{name}.") or not name for stack in stacks)
        if tokens in module.children() and not holds_blocks:
            found.append(module)
    return found


def prepare(model: nn.Module, options: FreezeOptions, context) -> nn.Module:
    stacks = block_lists(model)
    layers = min(len(blocks) for blocks in stacks.values())
    if options.frozen_layers > layers:
        raise PeftbenchError(
            f"method 'freeze': frozen_layers={options.frozen_layers} but the model has "
            f"{layers} layers; choose at most {layers}"
        )
    frozen_modules = [block for blocks in stacks.values() for block in blocks[: options.frozen_layers]]
    if options.freeze_embeddings:
        frozen_modules += embedding_modules(model, stacks)
    frozen = parameters_of(model, frozen_modules)
    return train_only(model, lambda name: name not in frozen, context)


METHODS.register("freeze")(
    Method(
        summary="all but the embeddings and the first `frozen_layers` blocks of each stack (partial tuning)",
        saved_as="trainable",
        validate=options_validator(FreezeOptions, "freeze"),
        prepare=prepare,
    )
)
