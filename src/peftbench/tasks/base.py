"""The task registry and what a task is. A task decides how data is encoded, which model class loads,
and how a trained model is scored; training, measurement and result files are shared by every task."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from datasets import DatasetDict
from peft import TaskType
from torch import nn

from peftbench.config.config import ExperimentConfig
from peftbench.config.registry import Registry
from peftbench.methods.base import MethodContext
from peftbench.models.models import ModelSource
from peftbench.training.training import TrainerParts


@dataclass
class TaskData:
    """Tokenised train/validation/test splits plus what the task needs to score the test split."""

    splits: DatasetDict
    metadata: dict = field(default_factory=dict)  # facts about the data, recorded in result.json under "data"
    test_references: Any = None  # what the test split is scored against (generation: prompts and references)


@dataclass
class Evaluation:
    """Scores of one model on the test split, plus files to write next to result.json."""

    metrics: dict
    result_fields: dict = field(default_factory=dict)  # merged into result.json (per_class, samples, ...)
    files: dict[str, str] = field(default_factory=dict)  # file name -> contents


class Task:
    """Base class; subclasses override what differs. Register an instance in TASKS."""

    summary = ""
    headline_metrics: tuple[str, ...] = ()
    learning_metric: str | None = None  # judged against the baselines ("did it learn?"); default: the first
    validation_metrics: tuple[str, ...] = ("loss",)  # what the Trainer's evaluation reports per epoch
    fresh_head = False  # a new, randomly initialised head that every method must train
    peft_task_types: tuple[TaskType, ...] = ()  # every value peft_task_type can return (models of the task)

    def validate(self, config: ExperimentConfig) -> None:
        """Reject configs this task cannot run, before anything loads."""

    def load_data(self, config: ExperimentConfig, tokenizer, model_config) -> TaskData:
        raise NotImplementedError

    def load_model(self, source: ModelSource, data: TaskData, tokenizer) -> nn.Module:
        raise NotImplementedError

    def model_from_config(self, model_config, num_labels: int = 2) -> nn.Module:
        """The task's model class built from a config alone (call under the meta device: no weights)."""
        raise NotImplementedError

    def example_batch(self, batch_size: int, seq_len: int, device: str = "meta") -> dict:
        """Training inputs of the given shape (token values are irrelevant to memory and timing)."""
        ids = torch.ones((batch_size, seq_len), dtype=torch.long, device=device)
        return {"input_ids": ids, "labels": ids.clone()}

    def peft_task_type(self, model: nn.Module) -> TaskType:
        raise NotImplementedError

    def head_modules(self, model: nn.Module) -> tuple[str, ...]:
        """Names of the modules that make up the task head: what the `head` method trains, and (when the
        head is fresh) what every other method trains too."""
        raise NotImplementedError

    def trainer_parts(self, tokenizer, model: nn.Module, data: TaskData) -> TrainerParts:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, trainer, inputs) -> Evaluation:
        raise NotImplementedError

    def extra_baselines(self) -> dict[str, tuple[str, Callable[[Any], Evaluation]]]:
        """Baselines besides the untrained model: name -> (summary, scorer of the run inputs)."""
        return {}


def method_context(
    task: Task,
    model: nn.Module,
    model_path: str,
    num_training_steps: int,
    tokenizer_kwargs: dict | None = None,
) -> MethodContext:
    """What methods need to know about the task and model they are applied to."""
    return MethodContext(
        model_path=model_path,
        tokenizer_kwargs=tokenizer_kwargs or {},
        num_training_steps=num_training_steps,
        peft_task_type=task.peft_task_type(model),
        head_modules=task.head_modules(model),
        fresh_head=task.fresh_head,
    )


def write_files(run_dir: Path, evaluation: Evaluation) -> None:
    from peftbench.results.results import write_atomic

    for name, text in evaluation.files.items():
        write_atomic(run_dir / name, text)


TASKS: Registry[Task] = Registry("task")
