"""What a method costs before any training: parameters, artifact size and training memory, from the
model's config alone. The model is built on the meta device (shapes, no weights); activation memory is what
autograd saves for the backward pass during one meta forward pass, counted through saved-tensor hooks."""

import copy
from dataclasses import asdict, dataclass

import torch
from torch import nn

from peftbench import models
from peftbench.config import MethodConfig
from peftbench.measure import count_parameters
from peftbench.methods import METHODS, prepare_model
from peftbench.tasks import Task, method_context

ADAM_STATES = 2  # AdamW keeps exp_avg and exp_avg_sq per trainable parameter, in fp32
METHOD = (
    "weights: every parameter at its dtype, plus the 16-bit copies of linear weights that bf16/fp16 autocast "
    "caches; gradients: trainable parameters; optimizer: AdamW, 2 fp32 states per trainable parameter; "
    "activations: tensors autograd saves in a meta-device forward pass at fp32 "
    "(bf16/fp16 autocast saves less: an upper bound there); temporaries of the backward pass not included"
)


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    gradients: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations


@dataclass(frozen=True)
class Inspection:
    """One method on one model: what trains, what ships, what training needs."""

    method: str
    total_params: int
    trainable_params: int
    trainable_percent: float
    artifact: str
    artifact_bytes: int
    memory: MemoryEstimate

    def as_dict(self) -> dict:
        return {**asdict(self), "memory": {**asdict(self.memory), "total": self.memory.total}}


def meta_model(source: models.ModelSource, task: Task, num_labels: int = 2) -> nn.Module:
    """The task's model for `source` on the meta device; only the config is read."""
    model_config = models.load_config(source)
    with torch.device("meta"):
        return task.model_from_config(model_config, num_labels)


def _parameter_views(tensor: torch.Tensor, parameters: set[int]) -> bool:
    base = tensor._base if tensor._base is not None else tensor
    return id(tensor) in parameters or id(base) in parameters


def saved_activation_bytes(model: nn.Module, inputs: dict) -> int:
    """Bytes of the tensors autograd saves for backward in one forward pass, excluding the weights.
    Meta tensors have no storage to compare, so a tensor saved by several operations counts once by
    identity; on real devices, once per storage."""
    parameters = {id(p) for p in model.parameters()}
    saved: dict[int, int] = {}
    keep_alive: list[torch.Tensor] = []  # ids stay unique only while the tensors live

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if _parameter_views(tensor, parameters):
            return tensor
        if tensor.device.type == "meta":
            saved[id(tensor)] = tensor.numel() * tensor.element_size()
            keep_alive.append(tensor)
        else:
            storage = tensor.untyped_storage()
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(**inputs)
    return sum(saved.values())


def autocast_copies(model: nn.Module, precision: str) -> int:
    """Bytes of the 16-bit weight copies autocast keeps while a forward pass runs (linear layers)."""
    if precision not in ("bf16", "fp16"):
        return 0
    return sum(m.weight.numel() * 2 for m in model.modules() if isinstance(m, nn.Linear))


def estimate_memory(model: nn.Module, inputs: dict, precision: str = "fp32") -> MemoryEstimate:
    """Training memory of `model` (already prepared by a method) on a batch shaped like `inputs`."""
    parameters = list(model.parameters())
    trainable = [p for p in parameters if p.requires_grad]
    return MemoryEstimate(
        weights=sum(p.numel() * p.element_size() for p in parameters) + autocast_copies(model, precision),
        gradients=sum(p.numel() * p.element_size() for p in trainable),
        optimizer=sum(p.numel() * 4 * ADAM_STATES for p in trainable),
        activations=saved_activation_bytes(model, inputs),
    )


def _artifact(method: str, counts: dict, model: nn.Module) -> tuple[str, int]:
    """What the method ships and its size: trainable tensors (adapters, BitFit) or the whole model."""
    saved_as = METHODS.get(method).saved_as
    bytes_per = next(model.parameters()).element_size()
    if saved_as == "model":
        return "full model", counts["total_params"] * bytes_per
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return ("adapter" if saved_as == "adapter" else "trainable"), trainable


def inspect_method(
    base: nn.Module,
    task: Task,
    entry: MethodConfig,
    model_path: str,
    batch_size: int,
    seq_len: int,
    precision: str = "fp32",
) -> Inspection:
    """Apply `entry` to a copy of the meta `base` model and estimate what training it would take."""
    context = method_context(task, base, model_path, num_training_steps=1000)
    model = prepare_model(copy.deepcopy(base), entry, context)
    counts = count_parameters(model)
    artifact, artifact_bytes = _artifact(entry.method, counts, model)
    model.train()
    return Inspection(
        method=entry.run_name,
        total_params=counts["total_params"],
        trainable_params=counts["trainable_params"],
        trainable_percent=counts["trainable_percent"],
        artifact=artifact,
        artifact_bytes=artifact_bytes,
        memory=estimate_memory(model, task.example_batch(batch_size, seq_len), precision),
    )
