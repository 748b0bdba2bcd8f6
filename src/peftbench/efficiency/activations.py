"""What autograd saves for the backward pass, counted through saved-tensor hooks during one forward pass and
attributed to the transformer blocks (the layers transformers' gradient checkpointing wraps) or to the rest
of the model. With gradient checkpointing a block keeps only its input; its own saved tensors exist again
only while the backward pass recomputes it, one block at a time."""

from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer


@dataclass(frozen=True)
class SavedActivations:
    outside: int  # saved outside the blocks: embeddings, final norm, head, loss
    blocks: tuple[int, ...]  # saved inside each block
    boundaries: int  # the blocks' inputs not already saved outside: what checkpointing keeps

    @property
    def total(self) -> int:
        return self.outside + sum(self.blocks)

    @property
    def checkpointed(self) -> int:
        """Kept with gradient checkpointing: everything outside the blocks, every block's input, and the
        largest block's recomputed tensors during its backward pass."""
        if not self.blocks:
            return self.total
        return self.outside + self.boundaries + max(self.blocks)


def blocks_of(model: nn.Module) -> list[nn.Module]:
    """The outermost checkpointable layers, in order."""
    found: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        inside = any(name.startswith(outer + ".") for outer, _ in found)
        if isinstance(module, GradientCheckpointingLayer) and not inside:
            found.append((name, module))
    return [module for _, module in found]


def _parameter_views(tensor: torch.Tensor, parameters: set[int]) -> bool:
    base = tensor._base if tensor._base is not None else tensor
    return id(tensor) in parameters or id(base) in parameters


def _key_and_size(tensor: torch.Tensor) -> tuple[int, int]:
    """Meta tensors have no storage to compare, so they count once by identity; real ones once per storage."""
    if tensor.device.type == "meta":
        return id(tensor), tensor.numel() * tensor.element_size()
    storage = tensor.untyped_storage()
    return storage.data_ptr(), storage.nbytes()


def saved_activations(model: nn.Module, inputs: dict) -> SavedActivations:
    """Bytes of the tensors autograd saves in one forward pass of `model` on `inputs`, weights excluded."""
    parameters = {id(p) for p in model.parameters()}
    blocks = blocks_of(model)
    saved: dict[int, tuple[int, int | None]] = {}
    inputs_of_blocks: dict[int, int] = {}
    keep_alive: list[torch.Tensor] = []  # ids stay unique only while the tensors live
    current: list[int | None] = [None]

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if not _parameter_views(tensor, parameters):
            key, size = _key_and_size(tensor)
            saved.setdefault(key, (size, current[0]))
            keep_alive.append(tensor)
        return tensor

    def enter(index: int):
        def hook(module, args, kwargs):
            current[0] = index
            hidden = args[0] if args else kwargs.get("hidden_states")
            if isinstance(hidden, torch.Tensor):
                key, size = _key_and_size(hidden)
                inputs_of_blocks[key] = size
                keep_alive.append(hidden)

        return hook

    def leave(module, args, output):
        current[0] = None

    handles = [h for i, b in enumerate(blocks) for h in _hooks(b, enter(i), leave)]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model(**inputs)
    finally:
        for handle in handles:
            handle.remove()
    outside = {key: size for key, (size, where) in saved.items() if where is None}
    per_block = [0] * len(blocks)
    for size, where in saved.values():
        if where is not None:
            per_block[where] += size
    boundaries = sum(size for key, size in inputs_of_blocks.items() if key not in outside)
    return SavedActivations(sum(outside.values()), tuple(per_block), boundaries)


def _hooks(block: nn.Module, enter, leave) -> list:
    return [
        block.register_forward_pre_hook(enter, with_kwargs=True),
        block.register_forward_hook(leave),
    ]
