"""Fair-comparison mode: before the final runs, every method trains briefly at each candidate learning
rate and is scored on the validation split (never the test split); its final runs use the best rate.

One learning rate for all methods favours some of them (adapters usually want ~10x the full fine-tuning
rate), so a comparison at a single rate says as much about the rate as about the method."""

import math
from pathlib import Path

from peftbench.config.config import ExperimentConfig, MethodConfig
from peftbench.config.search_config import LrSearchConfig
from peftbench.grid.grid import SEARCH_FOLDER, RunSpec, expand_methods
from peftbench.results import results
from peftbench.results.checkpoints import pause_step
from peftbench.results.run_folder import read_run

SEARCH_FILE = "search.json"  # written by each search run
SUMMARY_FILE = "lr_search.json"  # the whole search, next to the experiment's runs


def candidate(entry: MethodConfig, rate: float, epochs: float) -> MethodConfig:
    return entry.model_copy(
        update={"learning_rate": rate, "epochs": epochs, "name": f"{entry.run_name}-lr{rate:g}"}
    )


def _search_base(config: ExperimentConfig) -> ExperimentConfig:
    """The experiment a search run trains in: the first seed, the search's data, one rate per run. A
    halving search's runs carry its rungs: their hash is not the exhaustive runs' (their records differ)."""
    search = config.lr_search
    data = config.data.model_copy(
        update={"max_train_samples": search.max_train_samples or config.data.max_train_samples}
    )
    rungs = None
    if search.strategy == "halving":
        rungs = search.model_copy(update={"learning_rates": LrSearchConfig().learning_rates})
    return config.model_copy(
        update={
            "seed": (config.seeds or [config.seed])[0],
            "seeds": None,
            "data_fractions": None,
            "data": data,
            "baselines": False,
            "lr_search": rungs,
        }
    )


def search_spec(
    config: ExperimentConfig, entry: MethodConfig, rate: float, pause_at: tuple[int, int] | None = None
) -> RunSpec:
    """The search run of one method at one rate; `pause_at` stops it part-way (a halving rung)."""
    single = candidate(entry, rate, config.lr_search.epochs)
    return RunSpec("search", "", _search_base(config).model_copy(update={"methods": [single]}), pause_at)


def rung_pause(search: LrSearchConfig, k: int) -> tuple[int, int] | None:
    """Rung k's pause of a halving search (checkpoints.pause_step's num and den); None: the run's end."""
    if k == search.rungs - 1:
        return None
    return search.reduction_factor**k, search.reduction_factor ** (search.rungs - 1)


def rung_steps(search: LrSearchConfig, max_steps: int, warmup_steps: int) -> list[int]:
    """The steps a halving search scores a run of max_steps at: its pauses before the end, then the end.
    Fewer than `rungs` when the warm-up pushes the later pauses to the end or past it."""
    pauses = [pause_step(max_steps, warmup_steps, *rung_pause(search, k)) for k in range(search.rungs - 1)]
    return [step for step in pauses if step < max_steps] + [max_steps]


def search_specs(config: ExperimentConfig) -> list[RunSpec]:
    """The exhaustive search: one full search run per method and candidate rate."""
    return [
        search_spec(config, entry, rate)
        for entry in expand_methods(config.methods)
        for rate in config.lr_search.learning_rates
    ]


def _trial(folder: Path, rate: float, metric: str, pruned: dict | None = None) -> dict:
    """One search run's outcome; a failed, missing, diverged or pruned run has no value and cannot be
    chosen. steps_trained, max_steps and warmup_steps are as the run recorded them (None when it did not)."""
    record = results.read_json(folder / SEARCH_FILE) or {}
    steps = {key: record.get(key) for key in ("steps_trained", "max_steps", "warmup_steps")}
    if pruned is not None:
        return {"learning_rate": rate, "value": None, "status": "pruned", **pruned, **steps}
    run = read_run(folder, SEARCH_FILE)
    if run.status != "complete":
        return {"learning_rate": rate, "value": None, "status": run.status, **steps}
    if not run.finished:
        return {"learning_rate": rate, "value": None, "status": "damaged"}
    value = run.result["validation"].get(metric)
    if value is None or not math.isfinite(value):
        return {"learning_rate": rate, "value": None, "status": "diverged", **steps}
    return {
        "learning_rate": rate,
        "value": value,
        "status": run.status,
        "train_seconds": run.result["train_seconds"],
        **steps,
    }


def _steps(trials: list[dict]) -> dict:
    """Optimizer steps the search runs recorded, and what training every rate in full would have taken."""
    full = max((t["max_steps"] for t in trials if t.get("max_steps")), default=None)
    return {
        "spent": sum(t.get("steps_trained") or 0 for t in trials),
        "exhaustive": full * len(trials) if full else None,
    }


def _rungs(search: LrSearchConfig, trials: list[dict]) -> dict:
    """A halving search's rungs for one method's runs, from their records: warm-up and rung steps."""
    recorded = [t for t in trials if t.get("max_steps")]
    if search.strategy != "halving" or not recorded:
        return {}
    warmup = recorded[0].get("warmup_steps") or 0
    return {"warmup_steps": warmup, "rung_steps": rung_steps(search, recorded[0]["max_steps"], warmup)}


def _strategy(search) -> dict:
    if search.strategy == "exhaustive":
        return {"strategy": "exhaustive"}
    return {
        "strategy": "halving",
        "halving": {
            "pruner": "optuna.pruners.SuccessiveHalvingPruner",
            "reduction_factor": search.reduction_factor,
            "rungs": search.rungs,
            "rung_fractions": [
                f"{search.reduction_factor**k}/{search.reduction_factor ** (search.rungs - 1)}"
                for k in range(search.rungs)
            ],
        },
    }


def pick_rates(directory: Path, config: ExperimentConfig, pruned: dict[str, dict] | None = None) -> dict:
    """Pick each method's best rate from its search runs and write lr_search.json; returns that summary.
    `pruned`: the rates a halving search stopped early, per method (halving.run_halving)."""
    search = config.lr_search
    pick = min if search.lower_is_better else max
    methods = {}
    for entry in expand_methods(config.methods):
        stopped = (pruned or {}).get(entry.run_name, {})
        trials = [
            _trial(
                directory / SEARCH_FOLDER / candidate(entry, rate, search.epochs).run_name,
                rate,
                search.metric,
                stopped.get(rate),
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
            "steps": _steps(trials),
            **_rungs(search, trials),
            "trials": trials,
        }
    counts = [found["steps"] for found in methods.values()]
    exhaustive = [c["exhaustive"] for c in counts]
    summary = {
        **_strategy(search),
        "metric": search.metric,
        "lower_is_better": search.lower_is_better,
        "split": "validation",
        "epochs": search.epochs,
        "max_train_samples": search.max_train_samples or config.data.max_train_samples,
        "seed": (config.seeds or [config.seed])[0],
        "steps": {
            "spent": sum(c["spent"] for c in counts),
            "exhaustive": sum(exhaustive) if all(exhaustive) else None,
            "definition": "optimizer steps trained by the search runs, as each recorded (steps_trained); "
            "exhaustive: every candidate rate trained for all its steps (max_steps x rates)",
        },
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


def failures(directory: Path, config: ExperimentConfig) -> list[str]:
    """One line per search run that failed; a run paused at a halving rung (pruned) has not."""
    lines = []
    for entry in expand_methods(config.methods):
        for rate in config.lr_search.learning_rates:
            folder = directory / SEARCH_FOLDER / candidate(entry, rate, config.lr_search.epochs).run_name
            run = read_run(folder, SEARCH_FILE)
            if run.status not in ("complete", "paused", "missing"):
                lines.append(f"{folder.name}: {run.error or run.status}")
    return lines


def _outcome(trial: dict) -> str:
    if trial["value"] is not None:
        return f"{trial['learning_rate']:g}→{trial['value']:.4g}"
    if trial["status"] == "pruned":
        where = f"step {trial['pruned_at_step']}: {trial['last_value']:.4g}"
        return f"{trial['learning_rate']:g}→pruned ({where})"
    return f"{trial['learning_rate']:g}→{trial['status']}"


def _rung_lines(summary: dict) -> list[str]:
    """Where a halving search scored each method's runs, and why there were fewer rungs than configured."""
    lines = []
    for name, found in summary["methods"].items():
        if "rung_steps" not in found:
            continue
        steps, configured, warmup = found["rung_steps"], summary["halving"]["rungs"], found["warmup_steps"]
        fewer = ""
        if len(steps) < configured:
            after = f" once the first is past the {warmup} warm-up steps" if warmup else ""
            fewer = (
                f" (only {len(steps)} of the {configured} rungs configured fit in {steps[-1]} steps{after})"
            )
        lines.append(f"{name}: rungs at steps {', '.join(map(str, steps))}{fewer}")
    return lines


def describe(summary: dict) -> list[str]:
    """One line per method: the rates tried, the chosen one, and the validation score it won with; for
    halving, the steps each method's runs were scored at; then the steps the search trained against an
    exhaustive search's."""
    lines = []
    for name, found in summary["methods"].items():
        tried = ", ".join(_outcome(t) for t in found["trials"])
        chosen = found["chosen_learning_rate"]
        picked = f"lr {chosen:g}" if chosen else "no usable rate"
        lines.append(f"{name}: {picked} (validation {summary['metric']}: {tried})")
    lines += _rung_lines(summary)
    steps = summary["steps"]
    if steps["exhaustive"]:
        share = steps["spent"] / steps["exhaustive"]
        lines.append(
            f"{summary['strategy']} search: {steps['spent']} training steps, {share:.0%} of the "
            f"{steps['exhaustive']} an exhaustive search takes"
        )
    return lines
