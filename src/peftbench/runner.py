"""Run an experiment: shared data and base model, baselines, then every method through the same loop."""

import copy
import errno
import platform
import tempfile
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from peftbench import RESULT_SCHEMA_VERSION, __version__, checkpoints, models, quantization, results
from peftbench.config import ExperimentConfig, MethodConfig
from peftbench.datacache import load_task_data
from peftbench.grid import SEARCH_FOLDER, cell_of
from peftbench.lr_search import SEARCH_FILE
from peftbench.measure import count_parameters, safetensors_bytes
from peftbench.methods import METHODS, MethodContext, head_parameters_in, prepare_model
from peftbench.tasks import TASKS, Evaluation, Task, TaskData, method_context, write_files
from peftbench.training import TrainOutcome, eval_metrics, make_trainer, steps_per_run, train


@dataclass
class Workspace:
    """What every run of one experiment shares, loaded once."""

    config: ExperimentConfig
    source: models.ModelSource
    tokenizer: object
    task: Task
    data: TaskData
    base_model: nn.Module
    directory: Path
    suffix: str = ""  # seed / data-fraction tag of the run folders, e.g. "@seed1"
    config_hash: str | None = None


def environment() -> dict:
    packages = {name: version(name) for name in ("torch", "transformers", "peft", "datasets", "accelerate")}
    cpu = f"cpu ({platform.processor() or platform.machine()})"
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else cpu
    return {
        "device": device,
        "cuda": torch.cuda.is_available(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
        "peftbench": __version__,
    }


def prepare_workspace(config: ExperimentConfig) -> Workspace:
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
    return Workspace(config, source, tokenizer, task, data, base, directory)


def preflight(workspace: Workspace) -> None:
    """Apply every method to a copy of the model before training anything, so a misfit fails fast."""
    for entry in workspace.config.methods:
        prepare_model(copy.deepcopy(workspace.base_model), entry, _context(workspace, entry))


def _context(workspace: Workspace, entry: MethodConfig) -> MethodContext:
    training = workspace.config.method_training(entry)
    return method_context(
        workspace.task,
        workspace.base_model,
        workspace.source.path,
        steps_per_run(len(workspace.data.splits["train"]), training),
        {"gguf_file": workspace.source.gguf_file} if workspace.source.gguf_file else {},
    )


@contextmanager
def run_folder(run_dir: Path, config_hash: str | None = None):
    """Marks the run running; complete only if the body finished, else failed or interrupted."""
    run_dir.mkdir(parents=True, exist_ok=True)
    keyed = {"config_hash": config_hash}
    previous = results.read_status_file(run_dir)
    if previous.get("status") == "complete" or previous.get("config_hash") != config_hash:
        checkpoints.drop_checkpoints(run_dir / "trainer")  # another config's: never resumed from
    results.begin(run_dir, **keyed)
    try:
        yield run_dir
    except KeyboardInterrupt as stop:
        results.mark_if_possible(run_dir, "interrupted", signal=str(stop) or "SIGINT", **keyed)
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            error += "; free disk space under output_dir, then `peftbench run` again redoes this run"
        results.mark_if_possible(run_dir, "failed", error=error, traceback=traceback.format_exc(), **keyed)
        raise
    results.redact_folder(run_dir)
    results.mark(run_dir, "complete", **keyed)


def _base_result(workspace: Workspace, run: str, kind: str, started_at: str) -> dict:
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "status": "complete",
        "experiment": workspace.config.name,
        "run": run + workspace.suffix,
        "cell": cell_of(run + workspace.suffix),
        "config_hash": workspace.config_hash,
        "kind": kind,
        "task": workspace.config.task,
        "seed": workspace.config.seed,
        "model": {
            "name": workspace.config.model.name,
            "path": workspace.source.path,
            "gguf_file": workspace.source.gguf_file,
            "attention": getattr(workspace.base_model.config, "_attn_implementation", None),
            "quantization": quantization.used(workspace.config.model.quantization),
        },
        "data": {
            "dataset": workspace.config.data.dataset,
            **workspace.data.info,
            "sizes": {k: len(v) for k, v in workspace.data.splits.items()},
            "evaluated_on": "test",
        },
        "environment": environment(),
        "started_at": started_at,
    }


def _finish(run_dir: Path, result: dict, evaluation: Evaluation) -> None:
    """Write the evaluation's files, then result.json last (atomically)."""
    write_files(run_dir, evaluation)
    result.update({"metrics": {"test": evaluation.metrics}, **evaluation.extra})
    results.write_json(run_dir / results.RESULT_FILE, {**result, "finished_at": results.now()})


def run_extra_baseline(workspace: Workspace, name: str, summary: str, scorer) -> Path:
    run_dir = workspace.directory / (name + workspace.suffix)
    with run_folder(run_dir, workspace.config_hash):
        result = _base_result(workspace, name, "baseline", results.now())
        result["method"] = {"name": name.removeprefix("baseline-"), "summary": summary, "options": {}}
        _finish(run_dir, result, scorer(workspace))
    return run_dir


def _trainer(workspace: Workspace, model: nn.Module, run_dir: Path):
    config = workspace.config
    parts = workspace.task.trainer_parts(workspace.tokenizer, model, workspace.data)
    return make_trainer(model, workspace.tokenizer, config.training, run_dir / "trainer", config.seed, parts)


def run_untrained(workspace: Workspace) -> Path:
    """The model before any training: zero-shot for language tasks, a fresh head for classification."""
    run_dir = workspace.directory / ("baseline-untrained" + workspace.suffix)
    with run_folder(run_dir, workspace.config_hash):
        started_at = results.now()
        trainer = _trainer(workspace, workspace.base_model, run_dir)
        evaluation = workspace.task.evaluate(workspace.base_model, trainer, workspace)
        result = _base_result(workspace, "baseline-untrained", "baseline", started_at)
        summary = (
            "pretrained body with a fresh, untrained head"
            if workspace.task.fresh_head
            else "the pretrained model as is (zero-shot, same prompt)"
        )
        result["method"] = {"name": "untrained", "summary": summary, "options": {}}
        result["efficiency"] = count_parameters(workspace.base_model) | {
            "trainable_params": 0,
            "trainable_percent": 0.0,
        }
        _finish(run_dir, result, evaluation)
    return run_dir


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


def _save_artifact(model: nn.Module, ships: str, run_dir: Path, save_full: bool) -> dict:
    """Save what the method must ship and report the size of its weight files on disk."""
    if ships == "adapter":
        model.save_pretrained(run_dir / "adapter")
        return _artifact("adapter", run_dir / "adapter", "adapter")
    if ships == "trainable":
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


def run_config(config: ExperimentConfig, entry: MethodConfig) -> dict:
    """One run's whole config: the experiment without its method list, this method, its training."""
    return results.redact(
        {
            **config.model_dump(mode="json", exclude={"methods"}),
            "method": entry.model_dump(mode="json"),
            "training": config.method_training(entry).model_dump(mode="json"),
        }
    )


def _prepare_and_train(
    workspace: Workspace, entry: MethodConfig, run_dir: Path
) -> tuple[nn.Module, TrainOutcome]:
    context = _context(workspace, entry)
    model = prepare_model(copy.deepcopy(workspace.base_model), entry, context)
    outcome = train(
        model,
        workspace.tokenizer,
        workspace.config.method_training(entry),
        workspace.data.splits["train"],
        workspace.data.splits["validation"],
        run_dir / "trainer",
        workspace.config.seed,
        workspace.task.trainer_parts(workspace.tokenizer, model, workspace.data),
        run_config(workspace.config, entry),
        head_parameters_in(model, context.head_modules),
        METHODS.get(entry.method).callbacks(model),
    )
    return model, outcome


def run_method(workspace: Workspace, entry: MethodConfig) -> Path:
    run_dir = workspace.directory / (entry.run_name + workspace.suffix)
    config = workspace.config
    with run_folder(run_dir, workspace.config_hash):
        started_at = results.now()
        training = config.method_training(entry)
        method = METHODS.get(entry.method)
        results.write_yaml(run_dir / "config.yaml", run_config(config, entry))
        model, outcome = _prepare_and_train(workspace, entry, run_dir)
        evaluation = workspace.task.evaluate(model, outcome.trainer, workspace)
        result = _base_result(workspace, entry.run_name, "method", started_at)
        result["method"] = {"name": entry.method, "summary": method.summary, "options": entry.options}
        result["training"] = training.model_dump()
        result["learning_rates"] = outcome.learning_rates
        result["history"] = outcome.history
        result["resumed_from"] = outcome.resumed
        result["efficiency"] = {
            **count_parameters(model),
            **_save_artifact(model, method.ships, run_dir, config.save_full_model),
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
        results.write_json(run_dir / "history.json", outcome.history)
        _finish(run_dir, result, evaluation)
    return run_dir


def _validation_metrics(outcome: TrainOutcome) -> dict:
    """The validation metrics after the last epoch, evaluating once more if the loop logged none."""
    last = outcome.history[-1] if outcome.history else {}
    logged = {k.removeprefix("validation_"): v for k, v in last.items() if k.startswith("validation_")}
    if logged:
        return logged
    return eval_metrics(outcome.trainer.evaluate())


def run_search(workspace: Workspace, entry: MethodConfig) -> Path:
    """A learning-rate search run: train, score on the validation split, keep no weights."""
    run_dir = workspace.directory / SEARCH_FOLDER / entry.run_name
    with run_folder(run_dir, workspace.config_hash):
        _, outcome = _prepare_and_train(workspace, entry, run_dir)
        training = workspace.config.method_training(entry)
        record = {
            "run": entry.run_name,
            "method": entry.method,
            "learning_rate": training.learning_rate,
            "learning_rates": outcome.learning_rates,
            "epochs": training.epochs,
            "seed": workspace.config.seed,
            "train_samples": len(workspace.data.splits["train"]),
            "history": outcome.history,
            "validation": _validation_metrics(outcome),
            "train_seconds": outcome.train_seconds,
        }
        results.write_json(run_dir / SEARCH_FILE, record)
    return run_dir


def baseline_names(workspace: Workspace) -> list[str]:
    return [*workspace.task.extra_baselines(), "baseline-untrained"]


def run_baselines(workspace: Workspace) -> None:
    for name, (summary, scorer) in workspace.task.extra_baselines().items():
        run_extra_baseline(workspace, name, summary, scorer)
    run_untrained(workspace)
