"""Matplotlib figures for the report, returned as PNG bytes (Agg backend: no display needed)."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from peftbench.metrics.stats import summarize  # noqa: E402
from peftbench.report.collect import RunGroup, higher_is_better  # noqa: E402
from peftbench.report.summary import BASELINE_METHODS  # noqa: E402


def png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _by_x(runs: list[dict], key: str, x: str, source: str) -> dict[float, list[float]]:
    """Values of `key` at each x (step or epoch), pooled over the seeds."""
    pooled: dict[float, list[float]] = {}
    for run in runs:
        for row in run.get(source) or []:
            if row.get(key) is not None and row.get(x) is not None:
                pooled.setdefault(row[x], []).append(row[key])
    return dict(sorted(pooled.items()))


def _mean_and_band(axis, pooled: dict[float, list[float]], label: str, color) -> None:
    """The mean over seeds as a line (markers when there are few points), ±1 sd as a band."""
    xs = list(pooled)
    means = np.array([np.mean(v) for v in pooled.values()])
    spread = np.array([np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in pooled.values()])
    axis.plot(xs, means, marker="o" if len(xs) <= 12 else None, markersize=4, label=label, color=color)
    if spread.any():
        axis.fill_between(xs, means - spread, means + spread, alpha=0.2, color=color)


def _two_panels(groups: list[RunGroup], source: str, x: str, titles: tuple[str, str]) -> bytes | None:
    shown = [g for g in groups if any(r.get(source) for r in g.runs)]
    if not shown:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for index, group in enumerate(shown):
        color = f"C{index % 10}"
        seeds = len(group.runs)
        label = group.name + (f" ({seeds} seeds)" if seeds > 1 else "")
        for axis, key in ((left, "train_loss"), (right, "validation_loss")):
            pooled = _by_x(group.runs, key, x, source)
            if pooled:
                _mean_and_band(axis, pooled, label, color)
    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set(title=titles[0], xlabel=x, ylabel="loss")
    right.set(title=titles[1], xlabel=x)
    for axis in (left, right):
        if axis.lines:
            axis.legend(fontsize=8)
    return png(figure)


def loss_curves(groups: list[RunGroup]) -> bytes | None:
    """Training loss at every logging step and validation loss at every evaluation, all methods on one
    plot: mean over seeds, ±1 sd band."""
    if most_logged_losses(groups) < 2:
        return None  # single dots are no curve; build() says why none is drawn
    return _two_panels(
        groups, "logged_steps", "step", ("training loss per logging step", "validation loss per evaluation")
    )


def most_logged_losses(groups: list[RunGroup]) -> int:
    """The most training-loss points any run logged."""
    return max(
        (sum("train_loss" in row for row in r.get("logged_steps") or []) for g in groups for r in g.runs),
        default=0,
    )


def epoch_curves(groups: list[RunGroup]) -> bytes | None:
    """The per-epoch view (mean training loss of the epoch, validation loss at its end), drawn only
    when some run trained for several epochs."""
    if max((len(r.get("history") or []) for g in groups for r in g.runs), default=0) < 2:
        return None
    return _two_panels(groups, "history", "epoch", ("training loss per epoch", "validation loss per epoch"))


def pareto_front(points: list[tuple[float, float]], higher: bool) -> list[int]:
    """Indices of points no other point beats on both cost (lower) and quality."""
    front = []
    for i, (cost, quality) in enumerate(points):
        dominated = any(
            other_cost <= cost
            and (other_quality >= quality if higher else other_quality <= quality)
            and (other_cost, other_quality) != (cost, quality)
            for other_cost, other_quality in points
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def frontier_to_draw(points: list[tuple[float, float]], higher: bool) -> tuple[list[int], list[int]]:
    """The Pareto frontier as a line (only when it joins two or more points) and the dominated points."""
    front = pareto_front(points, higher)
    dominated = [i for i in range(len(points)) if i not in front]
    return (front if len(front) > 1 else []), dominated


def _baseline_line(axis, groups: list[RunGroup], metric: str) -> None:
    """The strongest baseline's quality as a dotted line: methods near it did not learn much."""
    scored = [
        (summarize(g.values(metric))["mean"], g.method)
        for g in groups
        if g.method in BASELINE_METHODS and summarize(g.values(metric))["mean"] is not None
    ]
    if scored:
        value, method = (max if higher_is_better(metric) else min)(scored)
        axis.axhline(value, linestyle=":", color="tab:red", label=f"best baseline ({method})")


def quality_against(
    groups: list[RunGroup], metric: str, cost: str, label: str, log: bool, scale: float = 1
) -> bytes | None:
    rows = []
    for group in groups:
        quality = summarize(group.values(metric))["mean"]
        spent = summarize(group.efficiency(cost))["mean"]
        if quality is not None and spent:
            rows.append((group.name, spent * scale, quality))
    return pareto_plot(groups, rows, metric, label, log)


def pareto_plot(
    groups: list[RunGroup], rows: list[tuple[str, float, float]], metric: str, label: str, log: bool = False
) -> bytes | None:
    """Test `metric` against a cost (lower is better), one point per (name, cost, quality) row: the
    frontier drawn only when it joins two or more points, dominated methods hollow and named so."""
    if len(rows) < 2:
        return None
    line, dominated = frontier_to_draw([(s, q) for _, s, q in rows], higher_is_better(metric))
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for i, (name, spent, quality) in enumerate(rows):
        hollow = i in dominated
        axis.scatter(
            spent, quality, s=40, facecolors="none" if hollow else "C0", edgecolors="grey" if hollow else "C0"
        )
        text = f"{name} (dominated)" if hollow else name
        axis.annotate(text, (spent, quality), textcoords="offset points", xytext=(5, 4), fontsize=8)
    _baseline_line(axis, groups, metric)
    if line:
        axis.plot(
            [rows[i][1] for i in line],
            [rows[i][2] for i in line],
            "--",
            color="grey",
            label="Pareto frontier",
        )
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8)
    if log:
        axis.set_xscale("log")
    axis.set(xlabel=label, ylabel=f"test {metric} (mean over seeds)", title=f"{metric} against {label}")
    return png(figure)


def training_time(groups: list[RunGroup]) -> bytes | None:
    trained = [c for c in groups if any(c.efficiency("train_seconds"))]
    if not trained:
        return None
    summaries = [summarize(c.efficiency("train_seconds")) for c in trained]
    figure, axis = plt.subplots(figsize=(7, 0.5 + 0.45 * len(trained)))
    errors = [s["std"] or 0 for s in summaries]
    axis.barh([c.name for c in trained], [s["mean"] for s in summaries], xerr=errors, color="tab:blue")
    axis.set(xlabel="training seconds (mean ± sd over seeds, evaluation excluded)", title="training time")
    return png(figure)


def confusion_matrices(groups: list[RunGroup]) -> bytes | None:
    shown = [c for c in groups if c.runs[0].get("confusion_matrix")]
    if not shown:
        return None
    columns = min(4, len(shown))
    rows = -(-len(shown) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3 * rows), squeeze=False)
    for axis in axes.flat[len(shown) :]:
        axis.axis("off")
    for axis, group in zip(axes.flat, shown, strict=False):
        matrix = np.asarray(group.runs[0]["confusion_matrix"]["rows_true_cols_pred"])
        labels = group.runs[0]["confusion_matrix"]["labels"]
        axis.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            axis.text(j, i, str(count), ha="center", va="center", fontsize=8)
        axis.set_xticks(range(len(labels)), labels, rotation=45, fontsize=7)
        axis.set_yticks(range(len(labels)), labels, fontsize=7)
        axis.set_title(group.name, fontsize=9)
    figure.supxlabel("predicted")
    figure.supylabel("true")
    return png(figure)


def lr_search(summary: dict) -> bytes | None:
    """Validation metric against learning rate per method (log x), the chosen rate starred."""
    figure, axis = plt.subplots(figsize=(7, 4))
    for name, found in summary["methods"].items():
        scored = [t for t in found["trials"] if t["value"] is not None]
        if not scored:
            continue
        line = axis.plot(
            [t["learning_rate"] for t in scored], [t["value"] for t in scored], marker="o", label=name
        )
        chosen = next((t for t in scored if t["learning_rate"] == found["chosen_learning_rate"]), None)
        if chosen:
            axis.plot(
                chosen["learning_rate"], chosen["value"], marker="*", markersize=16, color=line[0].get_color()
            )
    better = "lower" if summary["lower_is_better"] else "higher"
    axis.set(
        xscale="log",
        xlabel="learning rate (log)",
        ylabel=f"validation {summary['metric']} ({better} is better)",
    )
    axis.set_title("learning-rate search; ★ = rate used for the final runs", fontsize=10)
    axis.legend(fontsize=8)
    return png(figure)
