"""Gather finished runs into cells (one configuration, several seeds), summarise them and test them
against the reference cell on the same test examples."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from peftbench.errors import PeftbenchError
from peftbench.results import RESULT_FILE, read_result
from peftbench.stats import (
    SIGNIFICANCE,
    accuracy_resolution,
    degenerate_warnings,
    mcnemar,
    paired_bootstrap,
    summarize,
)
from peftbench.text_metrics import LOWER_IS_BETTER, bleu_on_subsets


@dataclass
class Cell:
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


def load_cells(root: Path) -> list[Cell]:
    cells: dict[str, Cell] = {}
    for path in sorted(Path(root).rglob(RESULT_FILE)):
        result = read_result(path.parent)
        if result is None:
            continue
        result["_dir"] = str(path.parent)
        name = result.get("cell") or result["run"]
        cells.setdefault(name, Cell(name)).runs.append(result)
    if not cells:
        raise PeftbenchError(f"no complete runs under '{root}'; run `peftbench run CONFIG` first")
    return list(cells.values())


def find_reference(cells: list[Cell], reference: str) -> Cell | None:
    return next((c for c in cells if c.name == reference), None) or next(
        (c for c in cells if c.method == reference), None
    )


def _fraction_tag(name: str) -> str:
    return name[name.index("@frac") :] if "@frac" in name else ""


def reference_at(cells: list[Cell], reference: Cell | None, cell: Cell) -> Cell | None:
    """The reference configuration trained on the same data fraction as `cell` (None if it did not run)."""
    if reference is None:
        return None
    name = reference.name.split("@frac")[0] + _fraction_tag(cell.name)
    return next((c for c in cells if c.name == name), None)


def _jsonl(run: dict, name: str) -> list[dict]:
    path = Path(run["_dir"]) / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _paired_rows(cell: Cell, reference: Cell, file: str) -> tuple[list[dict], list[dict]]:
    """Per-example outputs of both cells, pooled over the seeds they share."""
    mine, theirs = [], []
    reference_runs = reference.by_seed()
    for seed, run in cell.by_seed().items():
        fraction = run["data"].get("data_fraction")
        if seed in reference_runs and reference_runs[seed]["data"].get("data_fraction") == fraction:
            rows, reference_rows = _jsonl(run, file), _jsonl(reference_runs[seed], file)
            if len(rows) == len(reference_rows):
                mine += rows
                theirs += reference_rows
    return mine, theirs


def paired_test(cell: Cell, reference: Cell, task: str) -> dict | None:
    """McNemar on accuracy (classification) or a paired bootstrap of corpus BLEU (generation)."""
    if task == "classification":
        mine, theirs = _paired_rows(cell, reference, "predictions.jsonl")
        if not mine:
            return None
        correct = np.array([r["label"] == r["prediction"] for r in mine])
        reference_correct = np.array([r["label"] == r["prediction"] for r in theirs])
        return {"metric": "accuracy", "examples": len(mine), **mcnemar(reference_correct, correct)}
    if task == "generation":
        mine, theirs = _paired_rows(cell, reference, "generations.jsonl")
        if not mine:
            return None
        bleu = bleu_on_subsets([r["generated"] for r in mine], [r["references"] for r in mine])
        reference_bleu = bleu_on_subsets([r["generated"] for r in theirs], [r["references"] for r in theirs])
        everything = np.arange(len(mine))
        return {
            "metric": "bleu",
            "examples": len(mine),
            "bleu": bleu(everything),
            "reference_bleu": reference_bleu(everything),
            **paired_bootstrap(bleu, reference_bleu, len(mine)),
        }
    return None  # causal_lm saves no per-example outputs to pair


def significance_words(test: dict | None) -> str:
    if test is None:
        return "no paired test available"
    if test["p"] < SIGNIFICANCE:
        return f"significant (p={test['p']:.3g}, {test['test']})"
    return f"not significant (p={test['p']:.2g}, {test['test']})"


def warnings_for(cells: list[Cell], reference: Cell | None, task: str) -> list[str]:
    found = []
    for cell in cells:
        for run in cell.runs:
            for warning in degenerate_warnings(run):
                found.append(f"{cell.name} (seed {run.get('seed')}): {warning}")
    if reference is None or task != "classification":
        return found
    ref_accuracy = summarize(reference.values("accuracy"))["mean"]
    size = reference.runs[0]["data"]["sizes"]["test"]
    resolution = accuracy_resolution(ref_accuracy, size)
    for cell in cells:
        if cell is reference or cell.is_baseline:
            continue
        difference = summarize(cell.values("accuracy"))["mean"] - ref_accuracy
        if 0 < abs(difference) < resolution:
            found.append(
                f"{cell.name}: accuracy difference {difference:+.3f} against {reference.name} is within the "
                f"±{resolution:.3f} 95% interval of a single accuracy on {size} test examples (unpaired)"
            )
    return found


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


DUPLICATES = {
    "train_test_duplicates": ("train", "their scores can reflect memorisation"),
    "validation_test_duplicates": ("validation", "model selection saw them"),
}


def data_warnings(cells: list[Cell]) -> list[str]:
    """Test inputs that also occur in train or validation (exact duplicates), once per data setup."""
    found: dict[str, None] = {}
    for cell in cells:
        for run in cell.runs:
            data = run.get("data", {})
            tag = f" (data fraction {data['data_fraction']:g})" if data.get("data_fraction", 1) != 1 else ""
            test = data.get("sizes", {}).get("test")
            for key, (split, consequence) in DUPLICATES.items():
                if data.get(key):
                    line = f"{data[key]} of {test} test examples also occur in the {split} split"
                    found[f"data{tag}: {line} (exact duplicate inputs), so {consequence}"] = None
    return list(found)
