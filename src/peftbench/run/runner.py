"""One method's run: prepare the model, train it through the shared loop, evaluate, save what it ships;
and the short learning-rate search runs."""

import copy
import tempfile
import time
from pathlib import Path

from safetensors.torch import save_file
from torch import nn
from transformers import set_seed

from peftbench.config.config import MethodConfig
from peftbench.forgetting import benchmarks_eval, retention
from peftbench.grid.grid import SEARCH_FOLDER
from peftbench.grid.lr_search import SEARCH_FILE
from peftbench.inputs.run_inputs import RunInputs, method_context_for
from peftbench.measure.hardware import run_utilisation
from peftbench.measure.measure import count_parameters, safetensors_bytes
from peftbench.methods import METHODS, head_parameters_in, prepare_model
from peftbench.results import results
from peftbench.results.checkpoints import PauseAt
from peftbench.results.progress import ProgressFile
from peftbench.results.run_folder import Paused, recording
from peftbench.run.run_record import base_result, finish, run_config, run_seconds
from peftbench.training.training import TrainOutcome, eval_metrics, train
from peftbench.training.training_log import logged_steps

ARTIFACT_DEFINITION = (
    "bytes of the .safetensors weight files the method must ship, as written (adapter and full model: "
    "save_pretrained; trainable: the trainable tensors in one file); configs, tokenizer files and README "
    "are not counted. A full model that is not kept is saved to a scratch folder, measured and deleted"
)


def _artifact(kind: str, folder: Path, path: str | None) -> dict:
    return {
        "artifact": kind,
        "artifact_path": path,
        "artifact_bytes": safetensors_bytes(folder),
        "artifact_definition": ARTIFACT_DEFINITION,
    }


def _save_artifact(model: nn.Module, saved_as: str, run_dir: Path, save_full: bool) -> dict:
    """Save what the method must ship and report the size of its weight files on disk."""
    if saved_as == "adapter":
        model.save_pretrained(run_dir / "adapter")
        return _artifact("adapter", run_dir / "adapter", "adapter")
    if saved_as == "trainable":
        trainable = {n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad}
        (run_dir / "trainable").mkdir(exist_ok=True)
        save_file(trainable, run_dir / "trainable" / "model.safetensors")
        return _artifact("trainable weights", run_dir / "trainable", "trainable/model.safetensors")
    if save_full:
        model.save_pretrained(run_dir / "model")
        return _artifact("full model", run_dir / "model", "model")
    with tempfile.TemporaryDirectory(dir=run_dir, prefix=".artifact-") as scratch:
        model.save_pretrained(scratch)
        return _artifact("full model (not kept)", Path(scratch), None)


def _prepare_and_train(
    inputs: RunInputs, entry: MethodConfig, run_dir: Path, extra_callbacks: tuple = ()
) -> tuple[nn.Module, TrainOutcome]:
    """The method's own random initialisation (LoRA's A matrices, ...) is drawn from the run's seed, not
    from wherever the process's RNG was left: an inline grid runs many runs in one process, and a halving
    search's survivor must start from the weights of its exhaustive run, trained after other rates."""
    context = method_context_for(inputs, entry)
    set_seed(inputs.config.seed)
    model = prepare_model(copy.deepcopy(inputs.base_model), entry, context)
    outcome = train(
        model,
        inputs.tokenizer,
        inputs.config.method_training(entry),
        inputs.data.splits["train"],
        inputs.data.splits["validation"],
        run_dir / "trainer",
        inputs.config.seed,
        inputs.task.trainer_parts(inputs.tokenizer, model, inputs.data),
        run_config(inputs.config, entry),
        head_parameters_in(model, context.head_modules),
        [*METHODS.get(entry.method).callbacks(model), ProgressFile(run_dir), *extra_callbacks],
    )
    return model, outcome


def run_method(inputs: RunInputs, entry: MethodConfig) -> Path:
    run_dir = inputs.directory / (entry.run_name + inputs.suffix)
    config = inputs.config
    with recording(run_dir, inputs.config_hash):
        started, started_at = time.perf_counter(), results.now()
        training = config.method_training(entry)
        method = METHODS.get(entry.method)
        results.write_yaml(run_dir / "config.yaml", run_config(config, entry))
        model, outcome = _prepare_and_train(inputs, entry, run_dir)
        evaluating = time.perf_counter()
        evaluation = inputs.task.evaluate(model, outcome.trainer, inputs)
        evaluated = time.perf_counter() - evaluating
        result = base_result(inputs, entry.run_name, "method", started_at)
        result["method"] = {"name": entry.method, "summary": method.summary, "options": entry.options}
        result["training"] = {**training.model_dump(), "logging_steps": outcome.trainer.args.logging_steps}
        result["learning_rates"] = outcome.learning_rates
        result["history"] = outcome.history
        result["logged_steps"] = logged_steps(outcome.trainer.state.log_history)
        result["resumed_from"] = outcome.resumed
        result["efficiency"] = {
            **count_parameters(model),
            **_save_artifact(model, method.saved_as, run_dir, config.save_full_model),
            "train_seconds": outcome.train_seconds,
            "epoch_seconds": outcome.epoch_seconds,
            "train_samples_per_second": outcome.train_samples_per_second,
            "train_tokens_per_second": outcome.train_tokens_per_second,
            "epochs_trained": outcome.epochs_trained,
            "steps_trained": outcome.steps_trained,
            **outcome.memory,
            "timing_method": "perf_counter between epoch begin and end; evaluation excluded; samples and "
            "tokens per second count the epochs actually trained (epochs_trained)",
        }
        result["timing"] = outcome.timing
        result["utilisation"] = run_utilisation(model, outcome)
        result["efficiency"]["model_flops_utilisation"] = result["utilisation"]["utilisation"]
        result.update(retention.measure(inputs, model))  # forgetting and the alpha curve
        result["retention"] = benchmarks_eval.measure(inputs, model)
        results.write_json(run_dir / "history.json", outcome.history)
        result["seconds"] = run_seconds(started, evaluated)
        finish(run_dir, result, evaluation)
    return run_dir


def _validation_now(trainer) -> dict:
    """The validation metrics at the step training stopped at: the loop's evaluation there (epoch ends,
    and the end of a paused epoch), else one more evaluation."""
    for entry in reversed(trainer.state.log_history):
        if "eval_loss" in entry and entry.get("step") == trainer.state.global_step:
            return eval_metrics(entry)
    return eval_metrics(trainer.evaluate())


def _rungs(run_dir: Path, outcome: TrainOutcome, validation: dict) -> list[dict]:
    """The validation at each stop of this run (a halving search's rungs), with the step each segment
    started from: earlier segments' as recorded (those up to the checkpoint resumed from), then this one."""
    start = int(outcome.resumed["checkpoint"].rsplit("-", 1)[-1]) if outcome.resumed else 0
    earlier = (results.read_json(run_dir / SEARCH_FILE) or {}).get("rungs", []) if start else []
    now = {"step": outcome.trainer.state.global_step, "resumed_from": start, **validation}
    return [*(r for r in earlier if r["step"] <= start), now]


def run_search(inputs: RunInputs, entry: MethodConfig, pause_at: tuple[int, int] | None = None) -> Path:
    """A learning-rate search run: train, score on the validation split, keep no weights. With `pause_at`
    (halving), it stops part-way with a checkpoint, status 'paused', and is resumed for the next rung."""
    run_dir = inputs.directory / SEARCH_FOLDER / entry.run_name
    pause = [PauseAt(*pause_at)] if pause_at else []
    with recording(run_dir, inputs.config_hash):
        _, outcome = _prepare_and_train(inputs, entry, run_dir, tuple(pause))
        training = inputs.config.method_training(entry)
        state = outcome.trainer.state
        validation = _validation_now(outcome.trainer)
        rungs = _rungs(run_dir, outcome, validation)
        record = {
            "run": entry.run_name,
            "method": entry.method,
            "learning_rate": training.learning_rate,
            "learning_rates": outcome.learning_rates,
            "epochs": training.epochs,
            "seed": inputs.config.seed,
            "train_samples": len(inputs.data.splits["train"]),
            "history": outcome.history,
            "validation": validation,
            "train_seconds": outcome.train_seconds,
            "global_step": state.global_step,
            "max_steps": state.max_steps,
            "warmup_steps": outcome.trainer.args.get_warmup_steps(state.max_steps),  # where rungs may start
            "steps_trained": sum(r["step"] - r["resumed_from"] for r in rungs),  # by all its segments
            "rungs": rungs,
        }
        results.write_json(run_dir / SEARCH_FILE, record)
        if pause and pause[0].paused:
            raise Paused(state.global_step)
    return run_dir
