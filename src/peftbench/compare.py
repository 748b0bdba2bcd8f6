"""Side-by-side table over finished runs: quality, deltas against a reference, and cost."""

import csv
import io
from pathlib import Path

from peftbench.errors import PeftbenchError
from peftbench.results import finished_results

COLUMNS = [
    "run",
    "method",
    "accuracy",
    "f1_macro",
    "delta_accuracy",
    "delta_f1_macro",
    "trainable_params",
    "trainable_percent",
    "fewer_trainable_x",
    "artifact_mb",
    "train_seconds",
    "peak_rss_mb",
]


def _efficiency(result: dict, key: str):
    return (result.get("efficiency") or {}).get(key)


def rows(root: Path, reference: str = "full") -> list[dict]:
    found = finished_results(root)
    if not found:
        raise PeftbenchError(f"no complete runs under '{root}'; run `peftbench run CONFIG` first")
    by_run = {r["run"]: r for r in found}
    ref = by_run.get(reference) or next((r for r in found if r["method"]["name"] == reference), None)
    ref_metrics = ref["metrics"]["test"] if ref else {}
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
                "accuracy": metrics["accuracy"],
                "f1_macro": metrics["f1_macro"],
                "delta_accuracy": metrics["accuracy"] - ref_metrics["accuracy"] if ref else None,
                "delta_f1_macro": metrics["f1_macro"] - ref_metrics["f1_macro"] if ref else None,
                "trainable_params": trainable,
                "trainable_percent": _efficiency(result, "trainable_percent"),
                "fewer_trainable_x": ref_trainable / trainable if ref_trainable and trainable else None,
                "artifact_mb": artifact / 2**20 if artifact else None,
                "train_seconds": _efficiency(result, "train_seconds"),
                "peak_rss_mb": peak / 2**20 if peak else None,
            }
        )
    return table


def _cell(value, column: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if column.startswith("delta"):
            return f"{value:+.4f}"
        if column in ("accuracy", "f1_macro"):
            return f"{value:.4f}"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown(table: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(row[c], c) for c in COLUMNS) + " |" for row in table]
    return "\n".join(lines) + "\n"


def to_csv(table: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(table)
    return buffer.getvalue()


SHORT = {
    "run": "run",
    "method": "method",
    "accuracy": "acc",
    "f1_macro": "F1",
    "delta_accuracy": "Δacc",
    "delta_f1_macro": "ΔF1",
    "trainable_params": "trainable",
    "trainable_percent": "%",
    "fewer_trainable_x": "x fewer",
    "artifact_mb": "MB",
    "train_seconds": "train s",
    "peak_rss_mb": "RSS MB",
}


def rich_table(table: list[dict], reference: str):
    from rich.table import Table

    view = Table(title=f"test split; Δ against '{reference}'", padding=(0, 1), collapse_padding=True)
    for column in COLUMNS:
        view.add_column(
            SHORT[column],
            justify="left" if column in ("run", "method") else "right",
            no_wrap=True,
            min_width=len(SHORT[column]),
        )
    for row in table:
        view.add_row(*(_cell(row[c], c) for c in COLUMNS))
    return view
