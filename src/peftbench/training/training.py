"""The one training loop, shared by every method: Hugging Face Trainer plus measurement callbacks."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from torch import nn
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments

from peftbench.config.config import ExperimentConfig, TrainingConfig
from peftbench.config.trackers import RunConfigCallback
from peftbench.errors import PeftbenchError
from peftbench.measure.measure import MemoryPhases, PeakMemory
from peftbench.measure.timing import EpochTimer
from peftbench.results import checkpoints
from peftbench.training.label_smoothing import SmoothedTraining
from peftbench.training.ranks import memory_over_ranks, world_size


@dataclass(frozen=True)
class TrainerParts:
    """What the shared Trainer loop takes from the task."""

    collator: Callable
    model_inputs: tuple[str, ...]
    compute_metrics: Callable | None = None
    loss_only: bool = False  # language models: never gather vocabulary-sized logits


@dataclass
class TrainOutcome:
    history: list[dict]
    train_seconds: float
    epoch_seconds: list[float]
    train_samples_per_second: float
    train_tokens_per_second: float
    epochs_trained: float  # fewer than configured when early stopping ended training
    steps_trained: int
    memory: dict
    trainer: Trainer = field(repr=False)
    learning_rates: dict = field(default_factory=dict)  # {"body": ..., "head": ...} from the optimizer
    resumed: dict | None = None  # the checkpoint an interrupted run went on from, and its seconds before
    timing: dict = field(default_factory=dict)  # wall and CPU time per epoch, and whether contended


def model_columns(dataset: Dataset, inputs: tuple[str, ...]) -> Dataset:
    return dataset.remove_columns([c for c in dataset.column_names if c not in inputs])


def autocast(precision: str, device: torch.device):
    """The autocast the Trainer would use, for evaluation code that runs outside it."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    enabled = dtype is not None and (device.type == "cuda" or dtype == torch.bfloat16)
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=enabled)


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matrix products run several times faster than fp32 (Linux flags)."""
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.is_file() else set()
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str) -> str:
    """'auto' made concrete for this machine; fp16 without a GPU is refused (autocast needs CUDA)."""
    cuda = torch.cuda.is_available()
    if precision == "fp16" and not cuda:
        raise PeftbenchError("training.precision fp16 needs a CUDA GPU; use bf16 or auto on a CPU")
    if precision != "auto":
        return precision
    if cuda:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def with_resolved_precision(config: ExperimentConfig) -> ExperimentConfig:
    training = config.training.model_copy(update={"precision": resolve_precision(config.training.precision)})
    return config.model_copy(update={"training": training})


def steps_per_run(train_size: int, config: TrainingConfig) -> int:
    per_epoch = math.ceil(train_size / (config.batch_size * config.gradient_accumulation_steps))
    return max(1, math.ceil(per_epoch * config.epochs))


def logging_interval(train_size: int, config: TrainingConfig) -> int:
    """Configured, else ~20 points per run, 10 apart at most; at least once per epoch (history needs it)."""
    per_epoch = steps_per_run(train_size, config.model_copy(update={"epochs": 1}))
    wanted = config.logging_steps or min(10, max(1, steps_per_run(train_size, config) // 20))
    return min(wanted, per_epoch)


def _save_strategy(config: TrainingConfig) -> str:
    if config.early_stopping_patience:
        return "epoch"  # the best epoch is reloaded at the end; these checkpoints also serve resuming
    return "steps" if config.checkpoint_every else "no"


def _arguments(
    config: TrainingConfig, output_dir: Path, seed: int, evaluate: bool, loss_only: bool
) -> TrainingArguments:
    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size // world_size(),  # the global batch is batch_size
        per_device_eval_batch_size=config.eval_batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        lr_scheduler_type=config.lr_scheduler,
        bf16=config.precision == "bf16",
        fp16=config.precision == "fp16",
        activation_checkpointing=config.gradient_checkpointing,  # v5's name for gradient checkpointing
        activation_checkpointing_kwargs={"use_reentrant": False},
        optim=config.optim,
        eval_strategy="epoch" if evaluate else "no",
        save_strategy=_save_strategy(config),
        save_steps=config.checkpoint_every or 500,
        save_total_limit=None,  # checkpoints.keep_last, once the new one is complete
        load_best_model_at_end=bool(config.early_stopping_patience),
        metric_for_best_model="eval_loss",
        logging_strategy="steps",
        logging_steps=config.logging_steps or 10,  # train() sets it per run; evaluation-only never logs
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        report_to=config.report_to or "none",
        run_name="/".join(output_dir.parts[-3:-1]),  # <experiment>/<run>: how trackers name the run
        seed=seed,
        data_seed=seed,
        use_cpu=not cuda,
        dataloader_num_workers=0,
        disable_tqdm=False,
        prediction_loss_only=loss_only,
        # True multiplies every loss by the number of ranks, for models dividing by a global token count;
        # classification models do not (losses came out N times too large). Off: DDP averages rank means.
        average_tokens_across_devices=False,
    )


class HeadRateTrainer(checkpoints.ExactResume, SmoothedTraining, Trainer):
    """The Trainer with the task head's parameters in their own optimizer groups, at their own rate (the
    Trainer's groups, weight decay and all, each split in two), and label smoothing in training only."""

    def __init__(self, *args, head_parameters=(), head_learning_rate: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.head_ids = {id(p) for p in head_parameters}
        self.head_learning_rate = head_learning_rate or self.args.learning_rate

    def create_optimizer(self, model=None):
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(model)
        if fresh:
            split_head_groups(optimizer, self.head_ids, self.head_learning_rate)
        return optimizer


def split_head_groups(optimizer: torch.optim.Optimizer, head_ids: set[int], head_rate: float) -> None:
    for group in list(optimizer.param_groups):
        head = [p for p in group["params"] if id(p) in head_ids]
        group["params"] = [p for p in group["params"] if id(p) not in head_ids]
        group["part"] = "body"
        if head:
            settings = {k: v for k, v in group.items() if k != "params"}
            optimizer.add_param_group({**settings, "params": head, "lr": head_rate, "part": "head"})


def effective_learning_rates(optimizer) -> dict:
    """The peak rate each part of the model trained at, read from the optimizer's own groups (the scheduler
    keeps it as initial_lr); None for a part with nothing to train."""
    rates = {"body": None, "head": None}
    for group in optimizer.param_groups if optimizer is not None else []:
        if group["params"] and group.get("part") in rates:
            rates[group["part"]] = group.get("initial_lr", group["lr"])
    return rates


def make_trainer(
    model: nn.Module,
    tokenizer,
    config: TrainingConfig,
    output_dir: Path,
    seed: int,
    parts: TrainerParts,
    train: Dataset | None = None,
    validation: Dataset | None = None,
    head_parameters: list[nn.Parameter] = (),
    callbacks: list[TrainerCallback] = (),
) -> Trainer:
    callbacks = [
        *([EarlyStoppingCallback(config.early_stopping_patience)] if config.early_stopping_patience else []),
        *callbacks,
    ]
    return HeadRateTrainer(
        model=model,
        args=_arguments(config, output_dir, seed, validation is not None, parts.loss_only),
        train_dataset=model_columns(train, parts.model_inputs) if train is not None else None,
        eval_dataset=model_columns(validation, parts.model_inputs) if validation is not None else None,
        data_collator=parts.collator,
        processing_class=tokenizer,
        compute_metrics=parts.compute_metrics,
        callbacks=callbacks,
        head_parameters=head_parameters,
        head_learning_rate=config.head_learning_rate,
        label_smoothing=config.label_smoothing,
    )


def eval_metrics(logged: dict) -> dict:
    """The Trainer's eval_* entries as metric -> value, without its timing entries."""
    return {
        k.removeprefix("eval_"): v
        for k, v in logged.items()
        if k.startswith("eval_") and "runtime" not in k and "per_second" not in k
    }


def _history(log_history: list[dict]) -> list[dict]:
    """One row per epoch: mean training loss over that epoch's logged steps, and validation metrics."""
    rows: dict[int, dict] = {}
    losses: dict[int, list[float]] = {}
    for entry in log_history:
        epoch = max(1, math.ceil(entry.get("epoch", 0) - 1e-9))
        if "loss" in entry:
            losses.setdefault(epoch, []).append(entry["loss"])
        if "eval_loss" in entry:
            rows.setdefault(epoch, {}).update(eval_metrics(entry))
    return [
        {
            "epoch": epoch,
            "train_loss": float(np.mean(losses[epoch])) if epoch in losses else None,
            **{f"validation_{k}": v for k, v in rows.get(epoch, {}).items()},
        }
        for epoch in sorted(set(rows) | set(losses))
    ]


def train(
    model: nn.Module,
    tokenizer,
    config: TrainingConfig,
    train_set: Dataset,
    validation: Dataset,
    output_dir: Path,
    seed: int,
    parts: TrainerParts,
    run_config: dict | None = None,
    head_parameters: list[nn.Parameter] = (),
    callbacks: list[TrainerCallback] = (),
) -> TrainOutcome:
    config = config.model_copy(update={"logging_steps": logging_interval(len(train_set), config)})
    trainer = make_trainer(
        model, tokenizer, config, output_dir, seed, parts, train_set, validation, head_parameters, callbacks
    )
    timer = EpochTimer()
    trainer.add_callback(timer)
    if config.checkpoint_minutes:
        trainer.add_callback(checkpoints.SaveEveryMinutes(config.checkpoint_minutes))
    resume = checkpoints.ResumeState(trainer, timer.elapsed, checkpoints.last_checkpoint(output_dir))
    trainer.add_callback(resume)  # after every callback that asks for a checkpoint
    if run_config is not None and config.report_to:
        trainer.add_callback(
            RunConfigCallback(run_config, config.report_to, trainer.callback_handler.callbacks)
        )
    with PeakMemory() as memory, checkpoints.kept_on_stop(output_dir, trainer):
        trainer.add_callback(MemoryPhases(memory))
        start = time.perf_counter()
        trainer.train(resume_from_checkpoint=resume.path)
        wall = time.perf_counter() - start
    checkpoints.drop_unless_paused(output_dir, trainer)
    train_seconds = resume.train_seconds(sum(timer.epoch_seconds), wall)
    epochs = trainer.state.epoch  # as trained: early stopping may end training before config.epochs
    tokens = sum(len(ids) for ids in train_set["input_ids"]) * epochs
    return TrainOutcome(
        history=_history(trainer.state.log_history),
        train_seconds=train_seconds,
        epoch_seconds=timer.epoch_seconds,
        train_samples_per_second=len(train_set) * epochs / train_seconds,
        train_tokens_per_second=tokens / train_seconds,
        epochs_trained=epochs,
        steps_trained=trainer.state.global_step,
        memory={**memory_over_ranks(memory.report()), "train_wall_seconds_including_eval": wall},
        trainer=trainer,
        learning_rates=effective_learning_rates(trainer.optimizer),
        resumed=resume.record(sum(timer.epoch_seconds)),
        timing=timer.report(),
    )


def predict(trainer: Trainer, dataset: Dataset, inputs: tuple[str, ...]) -> tuple[np.ndarray, float]:
    """Logits and mean loss on `dataset`, evaluated without gradients."""
    with torch.inference_mode():
        output = trainer.predict(model_columns(dataset, inputs))
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    return np.asarray(logits, dtype=np.float32), float(output.metrics.get("test_loss", float("nan")))
