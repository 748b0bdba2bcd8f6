"""Gather finished runs into run groups (one configuration, several seeds) and test one group against
another on the same test examples."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from peftbench.data.splits import share_warning
from peftbench.errors import PeftbenchError
from peftbench.metrics.metrics import macro_f1
from peftbench.metrics.stats import (
    SIGNIFICANCE,
    accuracy_resolution,
    degenerate_warnings,
    mcnemar,
    over_units,
    paired_bootstrap,
    paired_units,
    summarize,
    unit_rows,
)
from peftbench.metrics.text_metrics import LOWER_IS_BETTER, TEXT_METRICS, subset_scorers
from peftbench.report.current import left_out_warnings
from peftbench.results.run_folder import select_current


@dataclass
class RunGroup:
    """One configuration of one method (or a baseline), over every seed it ran with."""

    name: str
    runs: list[dict] = field(default_factory=list)

    @property
    def method(self) -> str:
        return self.runs[0]["method"]["name"]

    @property
    def is_baseline(self) -> bool:
        return self.runs[0].get("kind") == "baseline"

    def values(self, metric: str) -> list[float]:
        return [r["metrics"]["test"].get(metric) for r in self.runs]

    def efficiency(self, key: str) -> list[float]:
        return [(r.get("efficiency") or {}).get(key) for r in self.runs]

    def by_seed(self) -> dict[int, dict]:
        return {r.get("seed"): r for r in self.runs}


def load_run_groups(root: Path) -> list[RunGroup]:
    return load_current_groups(root)[0]


def load_current_groups(root: Path) -> tuple[list[RunGroup], list[str]]:
    """The complete runs of the current experiment under root, grouped by configuration (result.json's
    "cell": the run name without its seed), and a warning naming the runs of earlier configurations
    left out."""
    selection = select_current(root)
    groups: dict[str, RunGroup] = {}
    for run in selection.current:
        result = run.result
        result["_dir"] = str(run.folder)
        name = result.get("cell") or result["run"]
        groups.setdefault(name, RunGroup(name)).runs.append(result)
    warnings = left_out_warnings(selection)
    if not groups:
        also = f" ({warnings[0]})" if warnings else ""
        raise PeftbenchError(f"no complete runs under '{root}'{also}; run `peftbench run CONFIG` first")
    return list(groups.values()), warnings


def find_reference(groups: list[RunGroup], reference: str) -> RunGroup | None:
    return next((c for c in groups if c.name == reference), None) or next(
        (c for c in groups if c.method == reference), None
    )


def _fraction_tag(name: str) -> str:
    return name[name.index("@frac") :] if "@frac" in name else ""


def reference_at(groups: list[RunGroup], reference: RunGroup | None, group: RunGroup) -> RunGroup | None:
    """The reference configuration trained on the same data fraction as `group` (None if it did not run)."""
    if reference is None:
        return None
    name = reference.name.split("@frac")[0] + _fraction_tag(group.name)
    return next((c for c in groups if c.name == name), None)


def _jsonl(run: dict, name: str) -> list[dict]:
    path = Path(run["_dir"]) / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _paired_rows(group: RunGroup, reference: RunGroup, file: str) -> tuple[list[dict], list[dict], int]:
    """Per-example outputs of both groups over the seeds they share, seed after seed, and the number of
    test examples per seed (every seed is tested on the same examples)."""
    mine, theirs, sizes = [], [], set()
    reference_runs = reference.by_seed()
    for seed, run in group.by_seed().items():
        fraction = (run.get("data") or {}).get("data_fraction")
        reference_run = reference_runs.get(seed)
        if reference_run is None or (reference_run.get("data") or {}).get("data_fraction") != fraction:
            continue
        rows, reference_rows = _jsonl(run, file), _jsonl(reference_run, file)
        if rows and len(rows) == len(reference_rows) and sizes <= {len(rows)}:
            mine += rows
            theirs += reference_rows
            sizes.add(len(rows))
    return mine, theirs, sizes.pop() if sizes else 0


def _over_seeds(metric: Callable[[np.ndarray], float], examples: int, seeds: int):
    """`metric` of the rows of the given test examples in every seed: a bootstrap that resamples
    examples (not example-seed pairs), so repeated seeds never count as more test data."""
    offsets = np.arange(seeds)[:, None] * examples

    def score(indices: np.ndarray) -> float:
        return metric((offsets + np.asarray(indices)[None, :]).ravel())

    return score


def _macro_f1_bootstrap(mine: list[dict], theirs: list[dict], examples: int, seeds: int) -> dict:
    labels = sorted({r["label"] for r in mine} | {r["prediction"] for r in mine + theirs})
    code = {label: i for i, label in enumerate(labels)}
    truth = np.array([code[r["label"]] for r in mine])

    def scorer(rows: list[dict]):
        predictions = np.array([code[r["prediction"]] for r in rows])
        return _over_seeds(lambda i: macro_f1(truth[i], predictions[i], len(labels)), examples, seeds)

    return paired_bootstrap(scorer(mine), scorer(theirs), examples)


LOSS_UNITS = {"generation": "prompts", "causal_lm": "documents"}  # what target_losses.jsonl's "unit" is
NO_UNITS = "rows (target_losses.jsonl records no units: each row alone)"


def _perplexity_bootstrap(group: RunGroup, reference: RunGroup, task: str) -> dict | None:
    """Corpus perplexity (exp of summed target loss over target tokens) on resampled prompts or
    documents, each with all of its rows in every seed."""
    from peftbench.tasks.language import TARGET_LOSSES_FILE

    mine, theirs, examples = _paired_rows(group, reference, TARGET_LOSSES_FILE)
    if not mine:
        return None
    seeds = len(mine) // examples
    units = paired_units([r.get("unit") for r in mine], [r.get("unit") for r in theirs], examples)
    unit = LOSS_UNITS.get(task, "examples") if units else NO_UNITS
    units = units or unit_rows(range(examples))

    def perplexity(rows: list[dict]):
        nll = np.array([r["nll_sum"] for r in rows])
        tokens = np.array([r["target_tokens"] for r in rows])
        rows_metric = _over_seeds(
            lambda i: float(np.exp(nll[i].sum() / max(tokens[i].sum(), 1))), examples, seeds
        )
        return over_units(rows_metric, units)

    return {
        "metric": "perplexity",
        "examples": examples,
        "seeds": seeds,
        "units": len(units),
        **paired_bootstrap(perplexity(mine), perplexity(theirs), len(units), unit=unit),
    }


def paired_test(group: RunGroup, reference: RunGroup, task: str, metric: str = "accuracy") -> dict | None:
    """Classification: exact McNemar on one seed, a paired bootstrap of accuracy over test examples when
    several seeds share them; for `metric` f1_macro a paired bootstrap of macro-F1. Generation: a paired
    bootstrap over prompts of `metric` (a text metric; BLEU for any other name). Language tasks, `metric`
    perplexity: a paired bootstrap of corpus perplexity over prompts (generation) or documents (causal_lm)."""
    if metric == "perplexity":
        return _perplexity_bootstrap(group, reference, task)
    file = {"classification": "predictions.jsonl", "generation": "generations.jsonl"}.get(task)
    if file is None:
        return None  # causal_lm saves no per-example outputs to pair
    mine, theirs, examples = _paired_rows(group, reference, file)
    if not mine:
        return None
    seeds = len(mine) // examples
    shared = {"examples": examples, "seeds": seeds}
    if task == "classification" and metric == "f1_macro":
        return {"metric": metric, **shared, **_macro_f1_bootstrap(mine, theirs, examples, seeds)}
    if task == "classification":
        correct = np.array([r["label"] == r["prediction"] for r in mine])
        reference_correct = np.array([r["label"] == r["prediction"] for r in theirs])
        if seeds == 1:
            return {"metric": "accuracy", **shared, **mcnemar(reference_correct, correct)}
        accuracy = _over_seeds(lambda i: float(correct[i].mean()), examples, seeds)
        reference_accuracy = _over_seeds(lambda i: float(reference_correct[i].mean()), examples, seeds)
        return {"metric": "accuracy", **shared, **paired_bootstrap(accuracy, reference_accuracy, examples)}
    scorers = subset_scorers()
    if metric not in scorers:
        if metric in TEXT_METRICS:
            return None  # METEOR without WordNet
        metric = "bleu"
    score, reference_score = (scorers[metric](*_texts(rows)) for rows in (mine, theirs))
    everything = np.arange(len(mine))
    return {
        "metric": metric,
        **shared,
        metric: score(everything),
        f"reference_{metric}": reference_score(everything),
        **paired_bootstrap(
            _over_seeds(score, examples, seeds),
            _over_seeds(reference_score, examples, seeds),
            examples,
            unit="prompts",
        ),
    }


def _texts(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    return [r["generated"] for r in rows], [r["references"] for r in rows]


def significance_words(test: dict | None) -> str:
    if test is None:
        return "no paired test available"
    if test["p"] < SIGNIFICANCE:
        return f"significant (p={test['p']:.3g}, {test['test']})"
    return f"not significant (p={test['p']:.2g}, {test['test']})"


def warnings_for(groups: list[RunGroup], reference: RunGroup | None, task: str) -> list[str]:
    found = []
    for group in groups:
        for run in group.runs:
            for warning in degenerate_warnings(run):
                found.append(f"{group.name} (seed {run.get('seed')}): {warning}")
    if reference is None or task != "classification":
        return found
    ref_accuracy = summarize(reference.values("accuracy"))["mean"]
    size = reference.runs[0]["data"]["sizes"]["test"]
    resolution = accuracy_resolution(ref_accuracy, size)
    for group in groups:
        if group is reference or group.is_baseline:
            continue
        difference = summarize(group.values("accuracy"))["mean"] - ref_accuracy
        if 0 < abs(difference) < resolution:
            found.append(
                f"{group.name}: accuracy difference {difference:+.3f} against {reference.name} is within the "
                f"±{resolution:.3f} 95% interval of a single accuracy on {size} test examples (unpaired)"
            )
    return found


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


DUPLICATES = {
    "train_test_duplicates": ("train", "their scores can reflect memorisation"),
    "validation_test_duplicates": ("validation", "model selection saw them"),
}


def data_warnings(groups: list[RunGroup]) -> list[str]:
    """Test inputs that also occur in train or validation (exact duplicates), splits that kept a share off
    what was asked, and prompts cut to nothing, once per data setup."""
    found: dict[str, None] = {}
    for group in groups:
        for run in group.runs:
            data = run.get("data", {})
            tag = f" (data fraction {data['data_fraction']:g})" if data.get("data_fraction", 1) != 1 else ""
            test = data.get("sizes", {}).get("test")
            for key, (split, consequence) in DUPLICATES.items():
                if data.get(key):
                    line = f"{data[key]} of {test} test examples also occur in the {split} split"
                    found[f"data{tag}: {line} (exact duplicate inputs), so {consequence}"] = None
            lines = [share_warning(role, kept) for role, kept in (data.get("shares") or {}).items()]
            dropped = (data.get("dropped_prompts") or {}).items()
            lines += [
                f"{n} {split} prompts kept none of their tokens (the target took the context)"
                for split, n in dropped
                if n
            ]
            found.update(dict.fromkeys(f"data{tag}: {line}" for line in lines if line))
    return list(found)
