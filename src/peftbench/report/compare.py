"""`peftbench compare`: the report's summary rows as a terminal, Markdown or CSV table."""

import csv
import io
from pathlib import Path

from peftbench.report.collect import find_reference, load_current_groups
from peftbench.report.samples import merge_samples
from peftbench.report.summary import format_value, head_rate_warnings, headline_metrics, summary_rows
from peftbench.results.run_folder import select_current
from peftbench.results.tables import Column, FitTable, count_short

COST_COLUMNS = [
    "trainable_params",
    "trainable_percent",
    "fewer_trainable_x",
    "artifact_mb",
    "train_seconds",
    "peak_rss_above_start_mb",
]


def columns(metrics: list[str]) -> list[str]:
    return ["run", "method", *metrics, *(f"delta_{m}" for m in metrics), *COST_COLUMNS]


def rows(root: Path, reference: str = "full") -> tuple[list[dict], list[str], list[str]]:
    """The report's summary rows (one per configuration, means over seeds), the columns shown, and the
    warnings: runs of earlier configurations left out, head learning rates that differ."""
    groups, warnings = load_current_groups(root)
    metrics = headline_metrics(groups)
    task = groups[0].runs[0].get("task", "classification")
    table = summary_rows(groups, find_reference(groups, reference), metrics, task)
    return table, columns(metrics), warnings + head_rate_warnings(table)


def samples(root: Path, count: int) -> list[dict]:
    """The first `count` saved samples of the current runs under `root`, each with every run's output for
    the same prompt."""
    return merge_samples([run.result for run in select_current(root).current], count)


def markdown(table: list[dict], names: list[str]) -> str:
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(format_value(row[c], c) for c in names) + " |" for row in table]
    return "\n".join(lines) + "\n"


def to_csv(table: list[dict], names: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(table)
    return buffer.getvalue()


SHORT = {
    "accuracy": "acc",
    "f1_macro": "F1",
    "perplexity": "ppl",
    "trainable_params": "trainable",
    "trainable_percent": "%",
    "fewer_trainable_x": "x fewer",
    "artifact_mb": "MB",
    "train_seconds": "train s",
    "peak_rss_above_start_mb": "RSS↑ MB",
}


def short(column: str) -> str:
    if column.startswith("delta_"):
        return "Δ" + short(column.removeprefix("delta_"))
    return SHORT.get(column, column)


def _short_value(value, column: str) -> str:
    return (
        count_short(value)
        if isinstance(value, int) and not isinstance(value, bool)
        else format_value(value, column)
    )


def rich_table(table: list[dict], names: list[str], reference: str) -> FitTable:
    """The rows as a terminal table that fits the console's width without cutting a number or a name."""
    caption = (
        "RSS↑: peak RSS in training above the run's start" if "peak_rss_above_start_mb" in names else None
    )
    columns = [
        Column(
            short(name),
            [format_value(row[name], name) for row in table],
            name=name in ("run", "method"),
            short_cells=[_short_value(row[name], name) for row in table],
        )
        for name in names
    ]
    return FitTable(columns, title=f"test split; Δ against '{reference}'", caption=caption)


def rich_samples(merged: list[dict]):
    from rich.table import Table
    from rich.text import Text  # plain Text: generated text may contain [markup]-like brackets

    view = Table(title="generated samples (test split)", show_lines=True)
    view.add_column("", no_wrap=True)
    view.add_column("text", overflow="fold")
    for sample in merged:
        view.add_row(Text("prompt", style="bold"), Text(sample["prompt"]))
        view.add_row(Text("reference", style="green"), Text("\n".join(sample["references"][:3])))
        for run, text in sample["outputs"].items():
            view.add_row(Text(run), Text(text) if text else Text("(empty)", style="dim"))
    return view
