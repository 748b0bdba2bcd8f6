"""Gather finished runs into cells (one configuration, several seeds), summarise them and test them
against the reference cell on the same test examples."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sacrebleu.metrics import BLEU

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
from peftbench.text_metrics import LOWER_IS_BETTER


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


def _jsonl(run: dict, name: str) -> list[dict]:
    path = Path(run["_dir"]) / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _paired_rows(cell: Cell, reference: Cell, file: str) -> tuple[list[dict], list[dict]]:
    """Per-example outputs of both cells, pooled over the seeds they share."""
    mine, theirs = [], []
    reference_runs = reference.by_seed()
    for seed, run in cell.by_seed().items():
        if seed in reference_runs:
            rows, reference_rows = _jsonl(run, file), _jsonl(reference_runs[seed], file)
            if len(rows) == len(reference_rows):
                mine += rows
                theirs += reference_rows
    return mine, theirs


def _bleu_on(rows: list[dict]):
    """Corpus BLEU of any subset of `rows`, from per-sentence n-gram statistics computed once
    (the sums are what sacrebleu's corpus_score adds up)."""
    scorer = BLEU(effective_order=True)  # silences a warning; counts and totals do not depend on it
    sentences = [scorer.sentence_score(r["generated"], r["references"]) for r in rows]
    table = np.array([[*s.counts, *s.totals, s.sys_len, s.ref_len] for s in sentences], dtype=float)

    def score(indices: np.ndarray) -> float:
        sums = table[indices].sum(axis=0)
        counts, totals = [int(v) for v in sums[:4]], [int(v) for v in sums[4:8]]
        return BLEU.compute_bleu(counts, totals, int(sums[8]), int(sums[9])).score

    return score


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
        result = paired_bootstrap(_bleu_on(mine), _bleu_on(theirs), len(mine))
        return {"metric": "bleu", "examples": len(mine), **result}
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
