"""Run an experiment: shared data and base model, baselines, then every method through the same loop."""

import copy
import json
import platform
import traceback
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from datasets import DatasetDict
from safetensors.torch import save_file
from torch import nn

from peftbench import RESULT_SCHEMA_VERSION, __version__, models, results
from peftbench.config import ExperimentConfig, MethodConfig
from peftbench.data import load_splits, tokenize
from peftbench.errors import PeftbenchError
from peftbench.measure import count_parameters, directory_bytes, weights_bytes
from peftbench.methods import METHODS, MethodContext, prepare_model
from peftbench.metrics import classification_metrics, per_class_report
from peftbench.training import make_trainer, predict, steps_per_run, train


@dataclass
class Workspace:
    """What every run of one experiment shares, loaded once."""

    config: ExperimentConfig
    source: models.ModelSource
    tokenizer: object
    splits: DatasetDict
    label_names: list[str]
    base_model: nn.Module
    directory: Path


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
    source = models.resolve(
        config.model.name, config.model.gguf_file, config.model.revision, config.model.trust_remote_code
    )
    tokenizer = models.load_tokenizer(source)
    splits, label_names = load_splits(config.data, config.seed)
    encoded = tokenize(splits, tokenizer, config.data.max_length)
    torch.manual_seed(config.seed)  # the fresh head is initialised once and shared by every method
    base = models.load_classifier(source, label_names, tokenizer.pad_token_id)
    directory = Path(config.output_dir) / config.name
    return Workspace(config, source, tokenizer, encoded, label_names, base, directory)


def preflight(workspace: Workspace) -> None:
    """Apply every method to a copy of the model before training anything, so a misfit fails fast."""
    for entry in workspace.config.methods:
        prepare_model(copy.deepcopy(workspace.base_model), entry, _context(workspace, entry))


def _context(workspace: Workspace, entry: MethodConfig) -> MethodContext:
    training = workspace.config.method_training(entry)
    return MethodContext(
        workspace.source.path,
        {"gguf_file": workspace.source.gguf_file} if workspace.source.gguf_file else {},
        steps_per_run(len(workspace.splits["train"]), training),
    )


@contextmanager
def run_folder(run_dir: Path):
    """Marks the run running; complete only if the body finished, else failed or interrupted."""
    run_dir.mkdir(parents=True, exist_ok=True)
    results.begin(run_dir)
    try:
        yield run_dir
    except KeyboardInterrupt:
        results.mark(run_dir, "interrupted")
        raise
    except Exception as exc:
        results.mark(
            run_dir, "failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()
        )
        raise
    results.mark(run_dir, "complete")


def _evaluation(workspace: Workspace, predictions: np.ndarray, loss: float | None) -> dict:
    labels = np.asarray(workspace.splits["test"]["label"])
    metrics = classification_metrics(labels, predictions, workspace.label_names)
    metrics["loss"] = loss
    return {"metrics": {"test": metrics}, **per_class_report(labels, predictions, workspace.label_names)}


def _save_predictions(
    run_dir: Path, workspace: Workspace, predictions: np.ndarray, logits: np.ndarray | None
) -> None:
    test = workspace.splits["test"]
    probabilities = torch.softmax(torch.from_numpy(logits), -1).numpy() if logits is not None else None
    lines = []
    for i, (text, label) in enumerate(zip(test["text"], test["label"], strict=True)):
        row = {
            "index": i,
            "text": text,
            "label": workspace.label_names[label],
            "prediction": workspace.label_names[int(predictions[i])],
        }
        if probabilities is not None:
            scores = map(float, probabilities[i].round(5))
            row["probabilities"] = dict(zip(workspace.label_names, scores, strict=True))
        lines.append(json.dumps(row))
    results.write_atomic(run_dir / "predictions.jsonl", "\n".join(lines) + "\n")


def _base_result(workspace: Workspace, run: str, kind: str) -> dict:
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "status": "complete",
        "experiment": workspace.config.name,
        "run": run,
        "kind": kind,
        "task": workspace.config.task,
        "seed": workspace.config.seed,
        "model": {
            "name": workspace.config.model.name,
            "path": workspace.source.path,
            "gguf_file": workspace.source.gguf_file,
        },
        "data": {
            "dataset": workspace.config.data.dataset,
            "label_names": workspace.label_names,
            "sizes": {k: len(v) for k, v in workspace.splits.items()},
            "evaluated_on": "test",
        },
        "environment": environment(),
        "started_at": results.now(),
    }


def _finish(
    run_dir: Path,
    workspace: Workspace,
    result: dict,
    predictions: np.ndarray,
    logits: np.ndarray | None,
    loss: float | None,
) -> None:
    """Score the test predictions, save them, and write result.json last (atomically)."""
    result.update(_evaluation(workspace, predictions, loss))
    _save_predictions(run_dir, workspace, predictions, logits)
    results.write_json(run_dir / results.RESULT_FILE, {**result, "finished_at": results.now()})


def run_majority(workspace: Workspace) -> Path:
    run_dir = workspace.directory / "baseline-majority"
    with run_folder(run_dir):
        majority = Counter(workspace.splits["train"]["label"]).most_common(1)[0][0]
        predictions = np.full(len(workspace.splits["test"]), majority)
        result = _base_result(workspace, "baseline-majority", "baseline")
        result["method"] = {
            "name": "majority",
            "summary": f"always '{workspace.label_names[majority]}', the most frequent training label",
            "options": {},
        }
        _finish(run_dir, workspace, result, predictions, None, None)
    return run_dir


def run_untrained(workspace: Workspace) -> Path:
    run_dir = workspace.directory / "baseline-untrained"
    with run_folder(run_dir):
        config = workspace.config
        trainer = make_trainer(
            workspace.base_model,
            workspace.tokenizer,
            config.training,
            run_dir / "trainer",
            config.seed,
            workspace.label_names,
        )
        logits, loss = predict(trainer, workspace.splits["test"])
        predictions = logits.argmax(-1)
        result = _base_result(workspace, "baseline-untrained", "baseline")
        result["method"] = {
            "name": "untrained",
            "summary": "pretrained body with a fresh, untrained head",
            "options": {},
        }
        result["efficiency"] = count_parameters(workspace.base_model) | {
            "trainable_params": 0,
            "trainable_percent": 0.0,
        }
        _finish(run_dir, workspace, result, predictions, logits, loss)
    return run_dir


def _measured(run_dir: Path, kind: str, folder: str, path: str) -> dict:
    size = directory_bytes(run_dir / folder)
    return {"artifact": kind, "artifact_path": path, "artifact_bytes": size, "artifact_measured": True}


def _save_artifact(model: nn.Module, ships: str, run_dir: Path, save_full: bool) -> dict:
    """Save what the method must ship and report its size on disk."""
    if ships == "adapter":
        model.save_pretrained(run_dir / "adapter")
        return _measured(run_dir, "adapter", "adapter", "adapter")
    if ships == "trainable":
        trainable = {n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad}
        (run_dir / "trainable").mkdir(exist_ok=True)
        save_file(trainable, run_dir / "trainable" / "model.safetensors")
        return _measured(
            run_dir, "trainable weights (safetensors)", "trainable", "trainable/model.safetensors"
        )
    if save_full:
        model.save_pretrained(run_dir / "model")
        return _measured(run_dir, "full model", "model", "model")
    return {
        "artifact": "full model (not saved; size = parameter bytes)",
        "artifact_path": None,
        "artifact_bytes": weights_bytes(model),
        "artifact_measured": False,
    }


def run_method(workspace: Workspace, entry: MethodConfig) -> Path:
    run_dir = workspace.directory / entry.run_name
    config = workspace.config
    with run_folder(run_dir):
        training = config.method_training(entry)
        method = METHODS.get(entry.method)
        model = prepare_model(copy.deepcopy(workspace.base_model), entry, _context(workspace, entry))
        parameters = count_parameters(model)
        results.write_yaml(
            run_dir / "config.yaml",
            {
                **config.model_dump(exclude={"methods"}),
                "method": entry.model_dump(),
                "training": training.model_dump(),
            },
        )
        outcome = train(
            model,
            workspace.tokenizer,
            training,
            workspace.splits["train"],
            workspace.splits["validation"],
            run_dir / "trainer",
            config.seed,
            workspace.label_names,
        )
        logits, loss = predict(outcome.trainer, workspace.splits["test"])
        predictions = logits.argmax(-1)
        result = _base_result(workspace, entry.run_name, "method")
        result["method"] = {"name": entry.method, "summary": method.summary, "options": entry.options}
        result["training"] = training.model_dump()
        result["history"] = outcome.history
        result["efficiency"] = {
            **parameters,
            **_save_artifact(model, method.ships, run_dir, config.save_full_model),
            "train_seconds": outcome.train_seconds,
            "epoch_seconds": outcome.epoch_seconds,
            "train_samples_per_second": outcome.train_samples_per_second,
            "train_tokens_per_second": outcome.train_tokens_per_second,
            **outcome.memory,
            "timing_method": "perf_counter between epoch begin and end; evaluation excluded",
        }
        results.write_json(run_dir / "history.json", outcome.history)
        _finish(run_dir, workspace, result, predictions, logits, loss)
    return run_dir


def run_experiment(config: ExperimentConfig, only: list[str] | None = None) -> tuple[Path, list[str]]:
    """Runs baselines and methods; returns the experiment folder and the names of runs that failed."""
    workspace = prepare_workspace(config)
    preflight(workspace)
    workspace.directory.mkdir(parents=True, exist_ok=True)
    results.write_yaml(workspace.directory / "experiment.yaml", config.model_dump())
    failed = []
    if config.baselines:
        run_majority(workspace)
        run_untrained(workspace)
    for entry in config.methods:
        if only and entry.run_name not in only:
            continue
        try:
            run_method(workspace, entry)
        except PeftbenchError as exc:
            failed.append(f"{entry.run_name}: {exc}")
        except Exception as exc:  # one broken run is recorded and the rest still run
            failed.append(f"{entry.run_name}: {type(exc).__name__}: {exc}")
    return workspace.directory, failed
