"""Fair-comparison mode: before the final runs, every method trains briefly at each candidate learning
rate and is scored on the validation split (never the test split); its final runs use the best rate.

One learning rate for all methods favours some of them (adapters usually want ~10x the full fine-tuning
rate), so a comparison at a single rate says as much about the rate as about the method."""

import math
from pathlib import Path

from peftbench import results
from peftbench.config import ExperimentConfig, MethodConfig
from peftbench.grid import SEARCH_FOLDER, RunSpec, expand_methods
from peftbench.run_folder import read_run

SEARCH_FILE = "search.json"  # written by each search run
SUMMARY_FILE = "lr_search.json"  # the whole search, next to the experiment's runs


def candidate(entry: MethodConfig, rate: float, epochs: float) -> MethodConfig:
    return entry.model_copy(
        update={"learning_rate": rate, "epochs": epochs, "name": f"{entry.run_name}-lr{rate:g}"}
    )


def search_specs(config: ExperimentConfig) -> list[RunSpec]:
    """One short run per method and candidate rate, on the first seed and the configured data."""
    search = config.lr_search
    data = config.data.model_copy(
        update={"max_train_samples": search.max_train_samples or config.data.max_train_samples}
    )
    base = config.model_copy(
        update={
            "seed": (config.seeds or [config.seed])[0],
            "seeds": None,
            "data_fractions": None,
            "data": data,
            "baselines": False,
            "lr_search": None,
        }
    )
    return [
        RunSpec("search", "", base.model_copy(update={"methods": [candidate(entry, rate, search.epochs)]}))
        for entry in expand_methods(config.methods)
        for rate in search.learning_rates
    ]


def _trial(folder: Path, rate: float, metric: str) -> dict:
    """One search run's outcome; a failed, missing or diverged run has no value and cannot be chosen."""
    run = read_run(folder, SEARCH_FILE)
    if run.status != "complete":
        return {"learning_rate": rate, "value": None, "status": run.status}
    if not run.finished:
        return {"learning_rate": rate, "value": None, "status": "damaged"}
    value = run.result["validation"].get(metric)
    if value is None or not math.isfinite(value):
        return {"learning_rate": rate, "value": None, "status": "diverged"}
    return {
        "learning_rate": rate,
        "value": value,
        "status": run.status,
        "train_seconds": run.result["train_seconds"],
    }


def pick_rates(directory: Path, config: ExperimentConfig) -> dict:
    """Pick each method's best rate from its search runs and write lr_search.json; returns that summary."""
    search = config.lr_search
    pick = min if search.lower_is_better else max
    methods = {}
    for entry in expand_methods(config.methods):
        trials = [
            _trial(
                directory / SEARCH_FOLDER / candidate(entry, rate, search.epochs).run_name,
                rate,
                search.metric,
            )
            for rate in search.learning_rates
        ]
        scored = [t for t in trials if t["value"] is not None]
        methods[entry.run_name] = {
            "method": entry.method,
            "configured_learning_rate": config.method_training(entry).learning_rate,
            "chosen_learning_rate": pick(scored, key=lambda t: t["value"])["learning_rate"]
            if scored
            else None,
            "trials": trials,
        }
    summary = {
        "metric": search.metric,
        "lower_is_better": search.lower_is_better,
        "split": "validation",
        "epochs": search.epochs,
        "max_train_samples": search.max_train_samples or config.data.max_train_samples,
        "seed": (config.seeds or [config.seed])[0],
        "methods": methods,
    }
    results.write_json(directory / SUMMARY_FILE, summary)
    return summary


def with_chosen_rates(config: ExperimentConfig, summary: dict) -> tuple[ExperimentConfig, list[str]]:
    """The experiment with every method at its chosen rate, and one failure line per method whose
    search produced no usable run (that method's final runs are skipped)."""
    methods, failed = [], []
    for entry in expand_methods(config.methods):
        chosen = summary["methods"][entry.run_name]["chosen_learning_rate"]
        if chosen is None:
            failed.append(
                f"{entry.run_name}: every learning-rate search run failed or diverged; see {SEARCH_FOLDER}/"
            )
        else:
            methods.append(entry.model_copy(update={"learning_rate": chosen}))
    return config.model_copy(update={"methods": methods, "lr_search": None}), failed


def describe(summary: dict) -> list[str]:
    """One line per method: the rates tried, the chosen one, and the validation score it won with."""
    lines = []
    for name, found in summary["methods"].items():
        tried = ", ".join(
            f"{t['learning_rate']:g}→{t['value']:.4g}"
            if t["value"] is not None
            else f"{t['learning_rate']:g}→{t['status']}"
            for t in found["trials"]
        )
        chosen = found["chosen_learning_rate"]
        picked = f"lr {chosen:g}" if chosen else "no usable rate"
        lines.append(f"{name}: {picked} (validation {summary['metric']}: {tried})")
    return lines
