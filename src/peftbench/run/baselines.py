"""Baseline runs: the untrained model, and each task's own (e.g. the majority class), scored like a method."""

import time
from pathlib import Path

from torch import nn

from peftbench.inputs.run_inputs import RunInputs
from peftbench.measure.measure import count_parameters
from peftbench.results import results
from peftbench.results.run_folder import recording
from peftbench.run.run_record import base_result, finish, run_seconds
from peftbench.training.training import make_trainer


def run_extra_baseline(inputs: RunInputs, name: str, summary: str, scorer) -> Path:
    run_dir = inputs.directory / (name + inputs.suffix)
    with recording(run_dir, inputs.config_hash):
        started = time.perf_counter()
        result = base_result(inputs, name, "baseline", results.now())
        result["method"] = {"name": name.removeprefix("baseline-"), "summary": summary, "options": {}}
        evaluation = scorer(inputs)
        result["seconds"] = run_seconds(started, time.perf_counter() - started)
        finish(run_dir, result, evaluation)
    return run_dir


def _trainer(inputs: RunInputs, model: nn.Module, run_dir: Path):
    config = inputs.config
    parts = inputs.task.trainer_parts(inputs.tokenizer, model, inputs.data)
    return make_trainer(model, inputs.tokenizer, config.training, run_dir / "trainer", config.seed, parts)


def run_untrained(inputs: RunInputs) -> Path:
    """The model before any training: zero-shot for language tasks, a fresh head for classification."""
    run_dir = inputs.directory / ("baseline-untrained" + inputs.suffix)
    with recording(run_dir, inputs.config_hash):
        started, started_at = time.perf_counter(), results.now()
        trainer = _trainer(inputs, inputs.base_model, run_dir)
        evaluating = time.perf_counter()
        evaluation = inputs.task.evaluate(inputs.base_model, trainer, inputs)
        evaluated = time.perf_counter() - evaluating
        result = base_result(inputs, "baseline-untrained", "baseline", started_at)
        summary = (
            "pretrained body with a fresh, untrained head"
            if inputs.task.fresh_head
            else "the pretrained model as is (zero-shot, same prompt)"
        )
        result["method"] = {"name": "untrained", "summary": summary, "options": {}}
        result["efficiency"] = count_parameters(inputs.base_model) | {
            "trainable_params": 0,
            "trainable_percent": 0.0,
        }
        result["seconds"] = run_seconds(started, evaluated)
        finish(run_dir, result, evaluation)
    return run_dir


def baseline_names(inputs: RunInputs) -> list[str]:
    return [*inputs.task.extra_baselines(), "baseline-untrained"]


def run_baselines(inputs: RunInputs) -> None:
    for name, (summary, scorer) in inputs.task.extra_baselines().items():
        run_extra_baseline(inputs, name, summary, scorer)
    run_untrained(inputs)
