"""Side-by-side table over finished runs: quality, deltas against a reference, and cost."""

import csv
import io
from pathlib import Path

from peftbench.errors import PeftbenchError
from peftbench.run_folder import finished_results

COST_COLUMNS = [
    "trainable_params",
    "trainable_percent",
    "fewer_trainable_x",
    "artifact_mb",
    "train_seconds",
    "peak_rss_mb",
]
QUALITY_FORMAT = {"accuracy", "f1_macro"}  # fractions: four decimals


def _efficiency(result: dict, key: str):
    return (result.get("efficiency") or {}).get(key)


def headline_metrics(found: list[dict]) -> list[str]:
    """The quality columns: each task's headline metrics, in order, over every task present."""
    from peftbench.tasks import TASKS

    names: dict[str, None] = {}
    for result in found:
        task = result.get("task", "classification")
        names.update(dict.fromkeys(TASKS.get(task).headline_metrics if task in TASKS else ()))
    return list(names)


def columns(metrics: list[str]) -> list[str]:
    return ["run", "method", *metrics, *(f"delta_{m}" for m in metrics), *COST_COLUMNS]


def _delta(metrics: dict, reference: dict | None, name: str):
    if reference is None or metrics.get(name) is None or reference.get(name) is None:
        return None
    return metrics[name] - reference[name]


def rows(root: Path, reference: str = "full") -> tuple[list[dict], list[str]]:
    """One row per finished run, and the column names (quality metrics depend on the task)."""
    found = finished_results(root)
    if not found:
        raise PeftbenchError(f"no complete runs under '{root}'; run `peftbench run CONFIG` first")
    metric_names = headline_metrics(found)
    by_run = {r["run"]: r for r in found}
    ref = by_run.get(reference) or next((r for r in found if r["method"]["name"] == reference), None)
    ref_metrics = ref["metrics"]["test"] if ref else None
    ref_trainable = _efficiency(ref, "trainable_params") if ref else None
    table = []
    for result in found:
        metrics = result["metrics"]["test"]
        trainable = _efficiency(result, "trainable_params")
        artifact = _efficiency(result, "artifact_bytes")
        peak = _efficiency(result, "peak_rss_bytes")
        table.append(
            {
                "run": result["run"],
                "method": result["method"]["name"],
                **{m: metrics.get(m) for m in metric_names},
                **{f"delta_{m}": _delta(metrics, ref_metrics, m) for m in metric_names},
                "trainable_params": trainable,
                "trainable_percent": _efficiency(result, "trainable_percent"),
                "fewer_trainable_x": ref_trainable / trainable if ref_trainable and trainable else None,
                "artifact_mb": artifact / 2**20 if artifact else None,
                "train_seconds": _efficiency(result, "train_seconds"),
                "peak_rss_mb": peak / 2**20 if peak else None,
            }
        )
    return table, columns(metric_names)


def samples(root: Path, count: int) -> list[dict]:
    """The first `count` saved samples under `root`, each with every run's output for the same prompt."""
    return merge_samples(finished_results(root), count)


def merge_samples(found: list[dict], count: int) -> list[dict]:
    found = [r for r in found if r.get("samples")]
    if not found:
        return []
    merged = []
    for i, sample in enumerate(found[0]["samples"][:count]):
        outputs = {
            r["run"]: r["samples"][i]["generated"]
            for r in found
            if i < len(r["samples"]) and r["samples"][i]["prompt"] == sample["prompt"]
        }
        merged.append({"prompt": sample["prompt"], "references": sample["references"], "outputs": outputs})
    return merged


def _cell(value, column: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if column.removeprefix("delta_") in QUALITY_FORMAT:
            return f"{value:+.4f}" if column.startswith("delta") else f"{value:.4f}"
        if column.startswith("delta"):
            return f"{value:+.3g}"
        if column in QUALITY_FORMAT:
            return f"{value:.4f}"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown(table: list[dict], names: list[str]) -> str:
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(_cell(row[c], c) for c in names) + " |" for row in table]
    return "\n".join(lines) + "\n"


def to_csv(table: list[dict], names: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names)
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
    "peak_rss_mb": "RSS MB",
}


def short(column: str) -> str:
    if column.startswith("delta_"):
        return "Δ" + short(column.removeprefix("delta_"))
    return SHORT.get(column, column)


def rich_table(table: list[dict], names: list[str], reference: str):
    from rich.table import Table

    view = Table(title=f"test split; Δ against '{reference}'", padding=(0, 1), collapse_padding=True)
    for column in names:
        view.add_column(
            short(column),
            justify="left" if column in ("run", "method") else "right",
            no_wrap=True,
            min_width=len(short(column)),
        )
    for row in table:
        view.add_row(*(_cell(row[c], c) for c in names))
    return view


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
