"""What every run of an experiment shares: data, tokenizer and base model, loaded once per seed and data."""

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from peftbench.config.config import ExperimentConfig, MethodConfig
from peftbench.inputs.datacache import load_task_data
from peftbench.methods import MethodContext, prepare_model
from peftbench.models import models
from peftbench.tasks import TASKS, Task, TaskData, method_context
from peftbench.training.training import steps_per_run


@dataclass
class RunInputs:
    """What every run of one seed and data fraction shares, loaded once; suffix and config_hash name the
    spec it is serving now."""

    config: ExperimentConfig
    source: models.ModelSource
    tokenizer: object
    task: Task
    data: TaskData
    base_model: nn.Module
    directory: Path
    suffix: str = ""  # seed / data-fraction tag of the run folders, e.g. "@seed1"
    config_hash: str | None = None


def prepare_inputs(config: ExperimentConfig) -> RunInputs:
    source = models.densify(
        models.resolve(
            config.model.name, config.model.gguf_file, config.model.revision, config.model.trust_remote_code
        )
    )
    task = TASKS.get(config.task)
    tokenizer = models.load_tokenizer(source)
    model_config = models.load_config(source)
    cuda = torch.cuda.is_available()
    attention = models.attention_for(
        model_config, config.training.precision, cuda, config.model.attn_implementation
    )
    source = replace(source, attention=attention, quantization=config.model.quantization)
    data = load_task_data(config, source, task, tokenizer, model_config)
    torch.manual_seed(config.seed)  # a fresh head is initialised once and shared by every method
    base = task.load_model(source, data, tokenizer)
    directory = Path(config.output_dir) / config.name
    return RunInputs(config, source, tokenizer, task, data, base, directory)


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def _weight_files(path: str) -> list | None:
    """Size and time of a local model's weight files, so weights replaced in place give another key."""
    folder = Path(path)
    if folder.is_file():
        files = [folder]
    elif folder.is_dir():
        files = sorted(f for f in folder.iterdir() if f.suffix in WEIGHT_SUFFIXES and f.is_file())
    else:
        return None  # a hub id: its revision is in the model section
    return [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def model_identity(inputs: RunInputs) -> dict:
    """Everything that changes the base model's outputs, for cache keys: the whole `model` section (a new
    field there joins the key by itself), where it resolved to and its weight files, the attention it
    runs, the precision and the loaded dtype, and the device kind."""
    model = inputs.base_model
    return {
        "model": inputs.config.model.model_dump(mode="json"),
        "path": inputs.source.path,
        "weights": _weight_files(inputs.source.path),
        "attention": getattr(model.config, "_attn_implementation", None) or inputs.source.attention,
        "precision": inputs.config.training.precision,
        "dtype": str(next(model.parameters()).dtype),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }


def preflight(inputs: RunInputs) -> None:
    """Apply every method to a copy of the model before training anything, so a misfit fails fast."""
    for entry in inputs.config.methods:
        prepare_model(copy.deepcopy(inputs.base_model), entry, method_context_for(inputs, entry))


def method_context_for(inputs: RunInputs, entry: MethodConfig) -> MethodContext:
    training = inputs.config.method_training(entry)
    return method_context(
        inputs.task,
        inputs.base_model,
        inputs.source.path,
        steps_per_run(len(inputs.data.splits["train"]), training),
        {"gguf_file": inputs.source.gguf_file} if inputs.source.gguf_file else {},
    )
