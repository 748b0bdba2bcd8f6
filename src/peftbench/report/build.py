"""`peftbench report DIR`: gather the runs, compute rows, verdict and figures, write the files."""

from pathlib import Path

from peftbench.grid.lr_search import SUMMARY_FILE
from peftbench.report.benchmarks import task_names, unmeasured_retention
from peftbench.report.collect import (
    data_warnings,
    find_reference,
    load_current_groups,
    warnings_for,
)
from peftbench.report.explore import explore_data
from peftbench.report.model import Report
from peftbench.report.provenance import provenance_lines, provenance_warnings
from peftbench.report.render import html, markdown, summary_csv
from peftbench.report.samples import merge_samples
from peftbench.report.summary import head_rate_warnings, headline_metrics, summary_rows
from peftbench.report.verdict import verdict
from peftbench.results.results import read_json, write_atomic

CURVE_NOTE = (
    "Mean over seeds, band ±1 sd. Training loss is the Trainer's logged loss (mean over each logging "
    "interval); validation loss is measured at each evaluation."
)


def curve_warnings(groups) -> list[str]:
    from peftbench.report.plots import most_logged_losses

    trained = [r for g in groups for r in g.runs if r.get("logged_steps")]
    if not trained or most_logged_losses(groups) >= 2:
        return []
    steps = max((r.get("efficiency") or {}).get("steps_trained") or 0 for r in trained)
    return [
        f"no loss curve drawn: each run logged its training loss once ({steps} optimizer steps); "
        "set training.logging_steps lower to see one"
    ]


def _figures(groups, primary: str, search: dict | None) -> dict[str, bytes | None]:
    from peftbench.report import plots, stability

    return {
        "Loss per logging step": plots.loss_curves(groups),
        "Loss per epoch": plots.epoch_curves(groups),
        f"{primary} against trainable parameters": plots.quality_against(
            groups, primary, "trainable_params", "trainable parameters (log)", log=True
        ),
        f"{primary} against peak RSS above start": plots.quality_against(
            groups,
            primary,
            "peak_rss_above_start_bytes",
            "peak RSS above start (MiB)",
            log=False,
            scale=1 / 2**20,
        ),
        "Training time per method": plots.training_time(groups),
        "Confusion matrices (first seed)": plots.confusion_matrices(groups),
        "Learning-rate search (validation split)": plots.lr_search(search) if search else None,
        f"{primary} against forgetting on general text": stability.tradeoff_plot(groups, primary),
        "Stability–plasticity curves (θ0 + α(θ − θ0), validation split)": stability.curves_plot(groups),
        **{
            f"{primary} against {task} retention (lm-eval)": stability.tradeoff_plot(groups, primary, task)
            for task in task_names(groups)
        },
    }


def build(root: Path, reference: str = "full") -> Report:
    from peftbench.report.stability import best_alpha_sentences, unmeasured_forgetting

    groups, left_out = load_current_groups(root)
    search = read_json(root / SUMMARY_FILE)
    task = groups[0].runs[0].get("task", "classification")
    metrics = headline_metrics(groups)
    reference_group = find_reference(groups, reference)
    rows = summary_rows(groups, reference_group, metrics, task)
    figures = {k: v for k, v in _figures(groups, metrics[0], search).items() if v}
    notes = {k: CURVE_NOTE for k in figures if k.startswith("Loss per")}
    return Report(
        title=f"peftbench report: {groups[0].runs[0]['experiment']}",
        task=task,
        reference=reference_group.name if reference_group else None,
        metrics=metrics,
        rows=rows,
        verdict=[
            *(
                []
                if reference_group
                else [f"No reference run '{reference}' to compare against; pass --reference."]
            ),
            *verdict(rows, metrics[0], task),
            *best_alpha_sentences(groups),
        ],
        warnings=[
            *left_out,
            *data_warnings(groups),
            *warnings_for(groups, reference_group, task),
            *head_rate_warnings(rows),
            *curve_warnings(groups),
            *unmeasured_forgetting(groups),
            *provenance_warnings(groups),
            *unmeasured_retention(groups),
        ],
        figures=figures,
        samples=merge_samples([g.runs[0] for g in groups], 3),
        lr_search=search,
        figure_notes=notes,
        explore=explore_data(groups, metrics),
        provenance=provenance_lines(groups),
    )


def write(report: Report, out_dir: Path) -> list[Path]:
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
