"""What `inspect` and `probe-batch` look at: model, task, methods, batch shape and the memory settings, from
an experiment file or from command-line flags (the tables they print are in efficiency/tables.py)."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from peftbench.config.config import MethodConfig, QuantizationConfig, apply_overrides
from peftbench.efficiency.memory_options import MemoryOptions
from peftbench.errors import PeftbenchError

if TYPE_CHECKING:
    from peftbench.config.config import ExperimentConfig


def parse_method(text: str) -> MethodConfig:
    """`lora:r=8:alpha=16` -> MethodConfig(method="lora", r=8, alpha=16), options checked by the method."""
    from peftbench.methods import validate_method

    name, *pairs = text.split(":")
    options = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise PeftbenchError(f"method option '{pair}' in '{text}' is not key=value; write e.g. lora:r=8")
        options[key.strip()] = yaml.safe_load(value)
    entry = MethodConfig(method=name.strip(), **options)
    validate_method(entry)
    return entry


@dataclass
class ProbeSetup:
    """What to inspect or probe: model, task, methods, the batch shape and the memory settings."""

    model: str
    task: str
    methods: list[MethodConfig]
    batch_size: int
    seq_len: int
    num_labels: int = 2
    precision: str = "auto"
    memory: MemoryOptions = field(default_factory=MemoryOptions)


# The experiment keys from_experiment reads ("*": and every key under it); --set of any other key is moot.
READS = (
    "model",
    "model.name",
    "model.quantization*",
    "task",
    "methods*",
    "training.batch_size",
    "training.precision",
    "training.gradient_checkpointing",
    "training.optim",
    "data.max_length",
)


def from_experiment(loaded: "ExperimentConfig") -> ProbeSetup:
    """An experiment's model, task, methods, batch size, max_length and memory settings."""
    from peftbench.grid.grid import expand_methods

    training = loaded.training
    return ProbeSetup(
        loaded.model.name,
        loaded.task,
        expand_methods(loaded.methods),
        training.batch_size,
        loaded.data.max_length,
        precision=training.precision,
        memory=MemoryOptions(training.gradient_checkpointing, training.optim, loaded.model.quantization),
    )


def from_config(path: Path, overrides: list[str] | None) -> ProbeSetup:
    from peftbench.inputs.experiment import load_config

    return from_experiment(load_config(path, overrides))


def from_flags(
    model: str | None, task: str, methods: list[str] | None, overrides: list[str] | None = None
) -> ProbeSetup:
    """The flags as the experiment they describe, with --set applied to it as to an experiment file: 16
    examples of 128 tokens unless set."""
    if not model:
        raise PeftbenchError("give --model (an alias, hub id or path) or --config with an experiment file")
    raw = {
        "name": "inspect",
        "task": task,
        "model": {"name": model},
        "data": {"dataset": "-", "max_length": 128},  # the dataset is never read here
        "training": {"batch_size": 16},
        "methods": [parse_method(m).model_dump(exclude_none=True) for m in methods or ["full", "lora"]],
    }
    return from_experiment(_checked(apply_overrides(raw, overrides or [])))


def _checked(raw: dict) -> "ExperimentConfig":
    """The flags' experiment, checked as a file would be, except that methods may repeat: as rows of a
    table, labelled by their options, they need no distinct run names."""
    from pydantic import ValidationError

    from peftbench.config.config import ExperimentConfig
    from peftbench.config.schema import explain
    from peftbench.grid.grid import expand_methods
    from peftbench.methods import validate_method

    methods = raw["methods"]
    if isinstance(methods, list):
        raw["methods"] = [
            {"name": f"row{i}", **m} if isinstance(m, dict) else m for i, m in enumerate(methods)
        ]
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise PeftbenchError(explain(exc, ExperimentConfig)) from None
    entries = [
        e.model_copy(update={"name": m.get("name")}) for e, m in zip(config.methods, methods, strict=True)
    ]
    for entry in expand_methods(entries):
        validate_method(entry)
    return config.model_copy(update={"methods": entries})


def with_memory_flags(
    setup: ProbeSetup, gradient_checkpointing: bool | None, optim: str | None, bits: int | None
) -> ProbeSetup:
    """Flags given on the command line override the file's settings."""
    from pydantic import ValidationError

    from peftbench.config.config import TrainingConfig
    from peftbench.config.schema import explain

    memory = setup.memory
    try:
        checked = TrainingConfig(optim=optim or memory.optim)
    except ValidationError as exc:
        raise PeftbenchError(explain(exc, TrainingConfig)) from None
    quantization = memory.quantization
    if bits is not None:
        quantization = QuantizationConfig(bits=bits) if bits else None
    gc = memory.gradient_checkpointing if gradient_checkpointing is None else gradient_checkpointing
    setup.memory = MemoryOptions(gc, checked.optim, quantization)
    return setup


def meta_base(setup: ProbeSetup):
    """The model's source, the task and the task's model on the meta device."""
    from peftbench.efficiency.estimate import meta_model
    from peftbench.models import models
    from peftbench.tasks import TASKS

    source = models.resolve(setup.model)
    task = TASKS.get(setup.task)
    return source, task, meta_model(source, task, setup.num_labels)
