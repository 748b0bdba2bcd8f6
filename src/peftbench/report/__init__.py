"""`peftbench report DIR`: report.md, a self-contained report.html and summary.csv for one experiment."""

from dataclasses import dataclass, field
from pathlib import Path

from peftbench.compare import merge_samples
from peftbench.lr_search import SUMMARY_FILE
from peftbench.report.collect import (
    Cell,
    data_warnings,
    find_reference,
    higher_is_better,
    load_cells,
    paired_test,
    reference_at,
    significance_words,
    warnings_for,
)
from peftbench.results import read_json
from peftbench.stats import summarize


@dataclass
class Report:
    title: str
    task: str
    reference: str | None
    metrics: list[str]
    rows: list[dict]
    verdict: list[str]
    warnings: list[str]
    figures: dict[str, bytes] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    lr_search: dict | None = None  # lr_search.json of a fair-comparison experiment


def _mean(values) -> float | None:
    return summarize(values)["mean"]


def summary_rows(cells: list[Cell], reference_cell: Cell | None, metrics: list[str], task: str) -> list[dict]:
    """One row per cell; deltas and paired tests against the reference at the cell's data fraction."""
    before = next((c for c in cells if c.method == "untrained"), None)
    rows = []
    for cell in cells:
        reference = reference_at(cells, reference_cell, cell)
        row = {"cell": cell.name, "method": cell.method, "seeds": len(cell.runs)}
        for metric in metrics:
            summary = summarize(cell.values(metric))
            row[metric] = summary["mean"]
            row[f"{metric}_std"] = summary["std"]
            row[f"{metric}_ci95"] = (
                f"[{summary['ci95_low']:.4g}, {summary['ci95_high']:.4g}]"
                if summary["ci95_low"] is not None
                else None
            )
            row[f"{metric}_before"] = _mean(before.values(metric)) if before else None
            reference_mean = _mean(reference.values(metric)) if reference else None
            row[f"delta_{metric}"] = (
                row[metric] - reference_mean if None not in (row[metric], reference_mean) else None
            )
        test = paired_test(cell, reference, task) if reference and cell is not reference else None
        row["paired_test"] = significance_words(test) if reference and cell is not reference else None
        row["p_value"] = test["p"] if test else None
        for key in (
            "trainable_params",
            "trainable_percent",
            "train_seconds",
            "peak_rss_bytes",
            "artifact_bytes",
        ):
            row[key] = _mean(cell.efficiency(key))
        rates = cell.runs[0].get("learning_rates") or {}  # the optimizer's own rates, the same for every seed
        row["learning_rate"], row["head_learning_rate"] = rates.get("body"), rates.get("head")
        rows.append(row)
    return rows


def verdict(rows: list[dict], reference: str | None, metric: str) -> list[str]:
    """One sentence per method against the reference, computed from the summary rows."""
    default = next((r for r in rows if r["cell"] == reference), None)
    if default is None or default[metric] is None:
        return [f"No reference run '{reference}' to compare against; pass --reference."]
    by_cell = {r["cell"]: r for r in rows}
    sentences = []
    for row in rows:
        tag = row["cell"][row["cell"].index("@frac") :] if "@frac" in row["cell"] else ""
        ref = by_cell.get(reference.split("@frac")[0] + tag, default)  # same data fraction
        if row is ref or row["method"] in ("untrained", "majority") or None in (row[metric], ref[metric]):
            continue
        value, ref_value, name = f"{row[metric]:.4g}", f"{ref[metric]:.4g}", ref["cell"]
        if higher_is_better(metric):
            share = 100 * row[metric] / ref[metric]
            quality = f"reaches {share:.1f}% of {name}'s {metric} ({value} vs {ref_value})"
        else:
            quality = f"has {metric} {value} against {name}'s {ref_value}"
        cost = []
        if row["trainable_percent"] is not None:
            cost.append(f"{row['trainable_percent']:.3g}% of the parameters trainable")
        if row["train_seconds"] and ref["train_seconds"]:
            cost.append(f"{row['train_seconds'] / ref['train_seconds']:.2g}x the training time")
        test = row["paired_test"] or "no paired test available"
        sentences.append(
            f"**{row['cell']}** {quality}; difference {test}; with {' and '.join(cost) or 'no cost data'}."
        )
    return sentences


def build(root: Path, reference: str = "full") -> Report:
    from peftbench.report import plots
    from peftbench.tasks import TASKS

    cells = load_cells(root)
    search_file = root / SUMMARY_FILE
    search = read_json(search_file)
    task = cells[0].runs[0].get("task", "classification")
    metrics = list(TASKS.get(task).headline_metrics)
    reference_cell = find_reference(cells, reference)
    rows = summary_rows(cells, reference_cell, metrics, task)
    primary = metrics[0]
    figures = {
        "Training and validation loss per epoch": plots.loss_curves(cells),
        f"{primary} against trainable parameters": plots.quality_against(
            cells, primary, "trainable_params", "trainable parameters (log)", log=True
        ),
        f"{primary} against peak memory": plots.quality_against(
            cells, primary, "peak_rss_bytes", "peak RSS (MiB)", log=False, scale=1 / 2**20
        ),
        "Training time per method": plots.training_time(cells),
        "Confusion matrices (first seed)": plots.confusion_matrices(cells),
        "Learning-rate search (validation split)": plots.lr_search(search) if search else None,
    }
    return Report(
        title=f"peftbench report: {cells[0].runs[0]['experiment']}",
        task=task,
        reference=reference_cell.name if reference_cell else None,
        metrics=metrics,
        rows=rows,
        verdict=verdict(rows, reference_cell.name if reference_cell else reference, primary),
        warnings=data_warnings(cells) + warnings_for(cells, reference_cell, task),
        figures={k: v for k, v in figures.items() if v},
        samples=merge_samples([c.runs[0] for c in cells], 3),
        lr_search=search,
    )


def write(report: Report, out_dir: Path) -> list[Path]:
    from peftbench.report.render import html, markdown, summary_csv
    from peftbench.results import write_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    figures_dir = out_dir / "figures"
    figures_dir.mkdir(exist_ok=True)
    names = {}
    for i, (title, png) in enumerate(report.figures.items()):
        path = figures_dir / f"figure-{i + 1}.png"
        path.write_bytes(png)
        names[title] = f"figures/{path.name}"
    paths = [out_dir / "report.md", out_dir / "report.html", out_dir / "summary.csv"]
    write_atomic(paths[0], markdown(report, names))
    write_atomic(paths[1], html(report))
    write_atomic(paths[2], summary_csv(report))
    return paths
