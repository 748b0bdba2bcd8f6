"""Matplotlib figures for the report, returned as PNG bytes (Agg backend: no display needed)."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from peftbench.report.collect import Cell, higher_is_better  # noqa: E402
from peftbench.stats import summarize  # noqa: E402


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def loss_curves(cells: list[Cell]) -> bytes | None:
    trained = [c for c in cells if c.runs[0].get("history")]
    if not trained:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for cell in trained:
        history = cell.runs[0]["history"]
        epochs = [row["epoch"] for row in history]
        left.plot(epochs, [row.get("train_loss") for row in history], marker="o", label=cell.name)
        right.plot(epochs, [row.get("validation_loss") for row in history], marker="o", label=cell.name)
    left.set(title="training loss (first seed)", xlabel="epoch", ylabel="loss")
    right.set(title="validation loss (first seed)", xlabel="epoch")
    right.legend(fontsize=8)
    return _png(figure)


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


def quality_against(
    cells: list[Cell], metric: str, cost: str, label: str, log: bool, scale: float = 1
) -> bytes | None:
    rows = []
    for cell in cells:
        quality = summarize(cell.values(metric))["mean"]
        spent = summarize(cell.efficiency(cost))["mean"]
        if quality is not None and spent:
            rows.append((cell.name, spent * scale, quality))
    if len(rows) < 2:
        return None
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, spent, quality in rows:
        axis.scatter(spent, quality, s=40)
        axis.annotate(name, (spent, quality), textcoords="offset points", xytext=(5, 4), fontsize=8)
    front = pareto_front([(s, q) for _, s, q in rows], higher_is_better(metric))
    axis.plot(
        [rows[i][1] for i in front], [rows[i][2] for i in front], "--", color="grey", label="Pareto frontier"
    )
    if log:
        axis.set_xscale("log")
    axis.set(xlabel=label, ylabel=f"test {metric} (mean over seeds)", title=f"{metric} against {label}")
    axis.legend(fontsize=8)
    return _png(figure)


def training_time(cells: list[Cell]) -> bytes | None:
    trained = [c for c in cells if any(c.efficiency("train_seconds"))]
    if not trained:
        return None
    summaries = [summarize(c.efficiency("train_seconds")) for c in trained]
    figure, axis = plt.subplots(figsize=(7, 0.5 + 0.45 * len(trained)))
    errors = [s["std"] or 0 for s in summaries]
    axis.barh([c.name for c in trained], [s["mean"] for s in summaries], xerr=errors, color="tab:blue")
    axis.set(xlabel="training seconds (mean ± sd over seeds, evaluation excluded)", title="training time")
    return _png(figure)


def confusion_matrices(cells: list[Cell]) -> bytes | None:
    shown = [c for c in cells if c.runs[0].get("confusion_matrix")]
    if not shown:
        return None
    columns = min(4, len(shown))
    rows = -(-len(shown) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3 * rows), squeeze=False)
    for axis in axes.flat[len(shown) :]:
        axis.axis("off")
    for axis, cell in zip(axes.flat, shown, strict=False):
        matrix = np.asarray(cell.runs[0]["confusion_matrix"]["rows_true_cols_pred"])
        labels = cell.runs[0]["confusion_matrix"]["labels"]
        axis.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            axis.text(j, i, str(count), ha="center", va="center", fontsize=8)
        axis.set_xticks(range(len(labels)), labels, rotation=45, fontsize=7)
        axis.set_yticks(range(len(labels)), labels, fontsize=7)
        axis.set_title(cell.name, fontsize=9)
    figure.supxlabel("predicted")
    figure.supylabel("true")
    return _png(figure)


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
    return _png(figure)
