"""Statistics for comparisons: spread over seeds, paired tests on the same examples, degenerate runs."""

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats as scipy_stats

SIGNIFICANCE = 0.05


def summarize(values: Sequence[float]) -> dict:
    """Mean, sample standard deviation and a two-sided 95% t confidence interval over seeds."""
    data = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(data)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci95_low": None, "ci95_high": None}
    mean = float(data.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci95_low": None, "ci95_high": None}
    std = float(data.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.975, n - 1) * std / math.sqrt(n))
    return {"n": n, "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}


def mcnemar(reference_correct: np.ndarray, run_correct: np.ndarray) -> dict:
    """Exact McNemar test on paired right/wrong outcomes (binomial on the discordant pairs)."""
    reference_correct = np.asarray(reference_correct, dtype=bool)
    run_correct = np.asarray(run_correct, dtype=bool)
    only_reference = int((reference_correct & ~run_correct).sum())
    only_run = int((~reference_correct & run_correct).sum())
    discordant = only_reference + only_run
    p = 1.0 if discordant == 0 else float(scipy_stats.binomtest(only_run, discordant, 0.5).pvalue)
    return {
        "test": "exact McNemar",
        "only_reference_right": only_reference,
        "only_run_right": only_run,
        "p": p,
    }


def paired_bootstrap(
    metric: Callable[[np.ndarray], float],
    reference_metric: Callable[[np.ndarray], float],
    size: int,
    resamples: int = 1000,
    seed: int = 0,
    unit: str = "examples",
) -> dict:
    """Resample `size` unit indices with replacement (a unit: a test example, a prompt with all its
    references, a document with all its blocks); both metrics see the same indices each time.

    Returns the observed difference (run - reference), its 95% percentile interval and a two-sided p:
    twice the share of resamples on the other side of zero (Koehn 2004, Berg-Kirkpatrick et al. 2012)."""
    everything = np.arange(size)
    observed = metric(everything) - reference_metric(everything)
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    for i in range(resamples):
        indices = rng.integers(0, size, size)
        differences[i] = metric(indices) - reference_metric(indices)
    if observed == 0:
        p = 1.0
    else:
        p = min(1.0, 2 * float(np.mean(differences <= 0) if observed > 0 else np.mean(differences >= 0)))
    low, high = np.percentile(differences, [2.5, 97.5])
    return {
        "test": f"paired bootstrap over {size} {unit} ({resamples} resamples)",
        "difference": float(observed),
        "ci95_low": float(low),
        "ci95_high": float(high),
        "p": p,
    }


def unit_rows(keys: Sequence) -> list[np.ndarray]:
    """The row indices of each unit (rows with equal keys), units in order of first appearance."""
    rows: dict = {}
    for row, key in enumerate(keys):
        rows.setdefault(key, []).append(row)
    return [np.asarray(indices) for indices in rows.values()]


def paired_units(keys: list, reference_keys: list, per_seed: int) -> list[np.ndarray] | None:
    """The units of one seed's rows when both runs record the same unit for every row, in every seed;
    None when a row records none (a file written before units were recorded) or the runs disagree."""
    if None in keys or keys != reference_keys or keys != keys[:per_seed] * (len(keys) // per_seed):
        return None
    return unit_rows(keys[:per_seed])


def over_units(metric: Callable[[np.ndarray], float], units: list[np.ndarray]) -> Callable:
    """`metric` of the rows of the given units, for a bootstrap that resamples whole units: rows that
    share a prompt or a document are drawn together, never as independent examples."""

    def score(indices: np.ndarray) -> float:
        return metric(np.concatenate([units[k] for k in np.asarray(indices)]))

    return score


def accuracy_resolution(accuracy: float, size: int) -> float:
    """Half-width of the 95% normal-approximation interval of an accuracy measured on `size` examples."""
    return 1.96 * math.sqrt(max(accuracy * (1 - accuracy), 1e-12) / size)


def degenerate_warnings(result: dict) -> list[str]:
    """Warnings about a finished run whose numbers should not be taken at face value."""
    warnings = []
    matrix = (result.get("confusion_matrix") or {}).get("rows_true_cols_pred")
    if matrix and result["method"]["name"] != "majority":  # the majority baseline is one class by design
        predicted = np.asarray(matrix).sum(axis=0)
        if (predicted > 0).sum() == 1:
            label = result["confusion_matrix"]["labels"][int(predicted.argmax())]
            warnings.append(f"predicts only '{label}' for every test example (a majority-class model)")
    losses = [
        row.get("train_loss") for row in result.get("history") or [] if row.get("train_loss") is not None
    ]
    if any(math.isnan(v) or math.isinf(v) for v in losses):
        warnings.append("training loss became NaN or infinite")
    elif len(losses) >= 2 and losses[-1] > 1.5 * losses[0]:
        warnings.append(f"training loss diverged ({losses[0]:.3g} -> {losses[-1]:.3g})")
    return warnings
