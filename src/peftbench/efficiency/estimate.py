"""What a method costs before any training: parameters, artifact size and training memory, from the
model's config alone. The model is built on the meta device (shapes, no weights); activation memory is what
autograd saves for the backward pass during one meta forward pass, counted through saved-tensor hooks."""

import copy
from dataclasses import asdict, dataclass

import torch
from torch import nn

from peftbench.config.config import MethodConfig
from peftbench.efficiency import optimizers
from peftbench.efficiency.activations import saved_activations
from peftbench.efficiency.memory_options import MemoryOptions
from peftbench.efficiency.weights import quantised_weights, weight_bytes
from peftbench.measure.measure import count_parameters
from peftbench.methods import METHODS, check_quantized_base, prepare_model
from peftbench.models import models
from peftbench.tasks import Task, method_context

METHOD = (
    "weights: every parameter at its dtype (on a quantised base: linear layers as bitsandbytes packs them, "
    "other 16-bit weights at fp32 as PEFT's k-bit preparation casts them), plus the "
    "16-bit copies of unquantised linear weights that bf16/fp16 autocast caches; gradients: trainable "
    "parameters; optimizer: the states training.optim keeps per trainable parameter; activations: tensors "
    "autograd saves in a meta-device forward pass at fp32 (bf16/fp16 autocast saves less: an upper bound "
    "there), with gradient checkpointing only the blocks' inputs plus the largest block's recompute; "
    "temporaries of the backward pass not included"
)

DEFAULTS = MemoryOptions()


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
    label: str  # the table's row name: the run name, or the method with its options
    total_params: int
    trainable_params: int
    trainable_percent: float
    artifact: str
    artifact_bytes: int
    memory: MemoryEstimate

    def as_dict(self) -> dict:
        return {**asdict(self), "memory": {**asdict(self.memory), "total": self.memory.total}}


def meta_model(source: models.ModelSource, task: Task, num_labels: int = 2) -> nn.Module:
    """The task's model for `source` on the meta device; only the config is read. A classifier without a
    pad token gets one as training gives it (the tokenizer's EOS), so decoder classifiers take batches > 1
    (language models keep none: a pad id makes transformers look for padding, which meta tensors can't)."""
    model_config = models.load_config(source)
    if task.fresh_head and getattr(model_config, "pad_token_id", 0) is None:
        eos = getattr(model_config, "eos_token_id", None)
        model_config.pad_token_id = (eos[0] if isinstance(eos, list) else eos) or 0
    with torch.device("meta"):
        return task.model_from_config(model_config, num_labels)


def saved_activation_bytes(model: nn.Module, inputs: dict) -> int:
    """Bytes of the tensors autograd saves for backward in one forward pass, excluding the weights."""
    return saved_activations(model, inputs).total


def autocast_copies(model: nn.Module, precision: str, quantised: set[int] = frozenset()) -> int:
    """Bytes of the 16-bit weight copies autocast keeps while a forward pass runs (unquantised linears)."""
    if precision not in ("bf16", "fp16"):
        return 0
    return sum(
        m.weight.numel() * 2
        for m in model.modules()
        if isinstance(m, nn.Linear) and id(m.weight) not in quantised
    )


def estimate_memory(
    model: nn.Module,
    inputs: dict,
    precision: str = "fp32",
    options: MemoryOptions = DEFAULTS,
    quantised: set[int] = frozenset(),
) -> MemoryEstimate:
    """Training memory of `model` (already prepared by a method) on a batch shaped like `inputs`;
    `quantised` holds the weights `options.quantization` converts (see weights.quantised_weights)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    activations = saved_activations(model, inputs)
    return MemoryEstimate(
        weights=weight_bytes(model, options.quantization, quantised)
        + autocast_copies(model, precision, quantised if options.quantization else frozenset()),
        gradients=sum(p.numel() * p.element_size() for p in trainable),
        optimizer=optimizers.state_bytes(trainable, options.optim),
        activations=activations.checkpointed if options.gradient_checkpointing else activations.total,
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
    options: MemoryOptions = DEFAULTS,
) -> Inspection:
    """Apply `entry` to a copy of the meta `base` model and estimate what training it would take."""
    check_quantized_base(entry.method, options.quantization)
    context = method_context(task, base, model_path, num_training_steps=1000)
    model = copy.deepcopy(base)
    quantised = quantised_weights(model) if options.quantization else frozenset()
    model = prepare_model(model, entry, context)
    counts = count_parameters(model)
    artifact, artifact_bytes = _artifact(entry.method, counts, model)
    model.train()
    return Inspection(
        method=entry.run_name,
        label=label(entry),
        total_params=counts["total_params"],
        trainable_params=counts["trainable_params"],
        trainable_percent=counts["trainable_percent"],
        artifact=artifact,
        artifact_bytes=artifact_bytes,
        memory=estimate_memory(model, task.example_batch(batch_size, seq_len), precision, options, quantised),
    )


def label(entry: MethodConfig) -> str:
    """A row's name: the entry's own name, else the method with its options (lora r=16 use_dora q,v)."""
    if entry.name:
        return entry.name
    words = [entry.method]
    for key, value in entry.options.items():
        if isinstance(value, list):
            words.append(",".join(map(str, value)))
        elif value is True:
            words.append(key)
        else:
            words.append(f"{key}={value}")
    return " ".join(words)
