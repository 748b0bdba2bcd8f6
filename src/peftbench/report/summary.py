"""One row per run group: quality over seeds, paired tests against the reference and the strongest
baseline, and cost. The report, summary.csv and `peftbench compare` all print these rows."""

from peftbench.metrics.stats import summarize
from peftbench.metrics.text_metrics import TEXT_METRICS
from peftbench.report.benchmarks import retention_summary
from peftbench.report.collect import (
    RunGroup,
    higher_is_better,
    paired_test,
    reference_at,
    significance_words,
)

FRACTION_METRICS = {"accuracy", "f1_macro"}  # 0-1 scale, printed with four decimals
BASELINE_METHODS = ("majority", "untrained")
PAIRED_KEYS = ("difference", "ci95_low", "ci95_high", "p")


def headline_metrics(groups: list[RunGroup]) -> list[str]:
    """The metrics the runs' config names (generation.report_metrics, recorded under result.json's
    decoding), else each task's headline metrics, in order, over every task present."""
    from peftbench.tasks import TASKS

    decodings = [r["decoding"] for g in groups for r in g.runs if r.get("decoding")]
    configured = next((d["report_metrics"] for d in decodings if d.get("report_metrics")), None)
    if configured:
        return list(configured)
    names: dict[str, None] = {}
    for group in groups:
        task = group.runs[0].get("task", "classification")
        names.update(dict.fromkeys(TASKS.get(task).headline_metrics if task in TASKS else ()))
    return list(names)


def learning_metric(task: str, metrics: list[str]) -> str | None:
    """The metric a method must beat the baselines on to count as having learned (the task says which)."""
    from peftbench.tasks import TASKS

    chosen = TASKS.get(task).learning_metric if task in TASKS else None
    return chosen if chosen in metrics else (metrics[0] if metrics else None)


def _mean(values) -> float | None:
    return summarize(values)["mean"]


def _mb(value: float | None) -> float | None:
    return value / 2**20 if value else None


def strongest_baseline(groups: list[RunGroup], group: RunGroup, metric: str) -> RunGroup | None:
    """The baseline with the best mean `metric` on the same data fraction as `group`."""
    candidates = [
        found
        for baseline in groups
        if baseline.method in BASELINE_METHODS
        and (found := reference_at(groups, baseline, group)) is not None
        and _mean(found.values(metric)) is not None
    ]
    if not candidates:
        return None
    sign = 1 if higher_is_better(metric) else -1
    return max(candidates, key=lambda b: sign * _mean(b.values(metric)))


def _quality(group: RunGroup, metric: str, reference: RunGroup | None, before: RunGroup | None) -> dict:
    summary = summarize(group.values(metric))
    reference_mean = _mean(reference.values(metric)) if reference else None
    return {
        metric: summary["mean"],
        f"{metric}_std": summary["std"],
        f"{metric}_ci95_low": summary["ci95_low"],
        f"{metric}_ci95_high": summary["ci95_high"],
        f"{metric}_before": _mean(before.values(metric)) if before else None,
        f"delta_{metric}": summary["mean"] - reference_mean
        if None not in (summary["mean"], reference_mean)
        else None,
    }


def _tested(
    group: RunGroup, other: RunGroup | None, task: str, prefix: str, metric: str = "accuracy"
) -> dict:
    test = paired_test(group, other, task, metric) if other is not None and other is not group else None
    return {
        prefix: other.name if other is not None else None,
        f"{prefix}_p": test["p"] if test else None,
        f"{prefix}_test": test["test"] if test else None,
    }


def paired_text_tests(group: RunGroup, reference: RunGroup | None, task: str, metrics: list[str]) -> dict:
    """Generation: each text metric's paired bootstrap over prompts against the reference, as
    paired_<metric>_difference (run − reference), _ci95_low, _ci95_high and _p."""
    if task != "generation" or reference is None or reference is group:
        return {}
    found = {}
    for metric in (m for m in metrics if m in TEXT_METRICS):
        test = paired_test(group, reference, task, metric)
        if test is not None and test["metric"] == metric:
            found.update({f"paired_{metric}_{k}": test[k] for k in PAIRED_KEYS})
    return found


def shared_value(values) -> float | str | None:
    """The value every seed used; the distinct values, comma-separated, where seeds differ."""
    found = sorted({v for v in values if v is not None})
    if len(found) > 1:
        return ", ".join(f"{v:g}" for v in found)
    return found[0] if found else None


def _cost(group: RunGroup, reference: RunGroup | None) -> dict:
    """Every seed of the group: means of the measured costs, and the optimizer's own learning rates."""
    trainable = _mean(group.efficiency("trainable_params"))
    reference_trainable = _mean(reference.efficiency("trainable_params")) if reference else None
    rates = [r.get("learning_rates") or {} for r in group.runs]
    return {
        "trainable_params": trainable,
        "trainable_percent": _mean(group.efficiency("trainable_percent")),
        "fewer_trainable_x": reference_trainable / trainable if reference_trainable and trainable else None,
        "artifact_mb": _mb(_mean(group.efficiency("artifact_bytes"))),
        "train_seconds": _mean(group.efficiency("train_seconds")),
        "peak_rss_above_start_mb": _mb(_mean(group.efficiency("peak_rss_above_start_bytes"))),
        "learning_rate": shared_value(r.get("body") for r in rates),
        "head_learning_rate": shared_value(r.get("head") for r in rates),
    }


def forgetting_summary(group: RunGroup) -> dict:
    """result.json's forgetting (general-text metric after − before training) over seeds."""
    found = [(r.get("forgetting") or {}) for r in group.runs]
    summary = summarize([f.get("value") for f in found])
    return {
        "forgetting": summary["mean"],
        "forgetting_ci95_low": summary["ci95_low"],
        "forgetting_ci95_high": summary["ci95_high"],
        "forgetting_metric": next((f["metric"] for f in found if f.get("metric")), None),
    }


def summary_rows(
    groups: list[RunGroup], reference: RunGroup | None, metrics: list[str], task: str
) -> list[dict]:
    """Deltas and paired tests are taken against the reference (and the strongest baseline) trained on
    the group's own data fraction; tests are on the first (primary) metric."""
    before = next((g for g in groups if g.method == "untrained"), None)
    learning = learning_metric(task, metrics)
    rows = []
    for group in groups:
        same_reference = reference_at(groups, reference, group)
        row = {
            "run": group.name,
            "method": group.method,
            "kind": "baseline" if group.is_baseline else "method",
            "seeds": len(group.runs),
        }
        for metric in metrics:
            row.update(_quality(group, metric, same_reference, before))
        row.update(_tested(group, same_reference, task, "reference", metrics[0] if metrics else ""))
        row.update(paired_text_tests(group, same_reference, task, metrics))
        row["paired_test"] = (
            significance_words({"p": row["reference_p"], "test": row["reference_test"]})
            if row["reference_p"] is not None
            else None
        )
        baseline = None if group.is_baseline or not learning else strongest_baseline(groups, group, learning)
        row.update(_tested(group, baseline, task, "baseline", learning))
        row["baseline_metric"] = learning
        row["baseline_value"] = _mean(baseline.values(learning)) if baseline else None
        row.update(_cost(group, same_reference))
        row.update(forgetting_summary(group))
        row.update(retention_summary(group))
        rows.append(row)
    return rows


def format_value(value, column: str = "") -> str:
    """How every table prints a number: fractions with four decimals, signed deltas, thousands grouped."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    delta = column.startswith("delta_")
    if column.removeprefix("delta_") in FRACTION_METRICS:
        return f"{value:+.4f}" if delta else f"{value:.4f}"
    if delta:
        return f"{value:+.3g}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def head_rate_warnings(rows: list[dict]) -> list[str]:
    """Methods that train the task head at different rates: their quality differences mix the method
    with its head's learning rate."""
    runs_at: dict[str, list[str]] = {}
    for row in rows:
        rate = row.get("head_learning_rate")
        if row["kind"] == "method" and rate is not None:
            runs_at.setdefault(rate if isinstance(rate, str) else f"{rate:g}", []).append(row["run"])
    if len(runs_at) < 2:
        return []
    listed = "; ".join(f"{rate} ({', '.join(runs)})" for rate, runs in runs_at.items())
    return [
        f"the methods train the task head at different learning rates: {listed}. Quality differences "
        "between them mix the method with its head's rate (a confound); set training.head_learning_rate "
        "to train every head at the same rate"
    ]
