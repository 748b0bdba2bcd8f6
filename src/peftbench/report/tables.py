"""The report's tables as text cells, shared by the Markdown and HTML renderers: a quality table and a
cost table (instead of one wide one), short headers explained in a legend, significance as a mark."""

from dataclasses import dataclass, field

from peftbench.metrics.stats import SIGNIFICANCE
from peftbench.report.benchmarks import LEGEND as RETENTION_LEGEND
from peftbench.report.benchmarks import retention_text
from peftbench.report.collect import higher_is_better
from peftbench.report.summary import format_value
from peftbench.report.verdict import learned, p_text

SHORT = {
    **{"accuracy": "acc", "f1_macro": "F1", "perplexity": "ppl", "rougeL": "ROUGE-L", "bleu": "BLEU"},
    **{"nist": "NIST", "meteor": "METEOR", "cider": "CIDEr"},
}
MARKS = "✓ better, ✗ worse, ≈ no significant difference (p ≥ 0.05), – no paired test"


@dataclass
class Table:
    header: list[str]
    rows: list[list[tuple[str, str]]]  # (text, hover text); hover is "" when there is none
    legend: str
    notes: list[str] = field(default_factory=list)


def short(metric: str) -> str:
    return SHORT.get(metric, metric)


def _mark(row: dict, prefix: str, metric: str) -> tuple[str, str]:
    """✓/✗/≈ for the paired test of `row` against its reference or baseline, the p-value on hover."""
    p, other = row.get(f"{prefix}_p"), row.get(prefix)
    if prefix == "reference" and other == row["run"]:
        return "ref", "the reference"
    if p is None or row.get(metric) is None:
        return "–", "no paired test"
    hover = f"{p_text(p)}, {row[f'{prefix}_test']} against {other}"
    if p >= SIGNIFICANCE:
        return "≈", hover
    if prefix == "baseline":
        return ("✓" if learned(row, metric) else "✗"), hover
    delta = row.get(f"delta_{metric}") or 0
    return ("✓" if (delta > 0) == higher_is_better(metric) else "✗"), hover


def _baseline_metric(rows: list[dict], primary: str) -> str:
    return next((r["baseline_metric"] for r in rows if r.get("baseline_metric")), primary)


def _spread(row: dict, metric: str) -> str:
    std = row.get(f"{metric}_std")
    return format_value(row[metric], metric) + (f" ± {std:.2g}" if std is not None else "")


def _interval(row: dict, metric: str) -> str:
    low, high = row.get(f"{metric}_ci95_low"), row.get(f"{metric}_ci95_high")
    return "–" if low is None else f"{low:.3g}–{high:.3g}"


def _p_notes(rows: list[dict], prefix: str, what: str) -> str | None:
    tested = [r for r in rows if r.get(f"{prefix}_p") is not None]
    if not tested:
        return None
    listed = "; ".join(f"{r['run']} vs {r[prefix]} {p_text(r[f'{prefix}_p'])}" for r in tested)
    return f"{what} ({tested[0][f'{prefix}_test']}): {listed}."


def forgetting_text(row: dict) -> str:
    """Mean over seeds, its 95% CI in brackets where there are seeds to give one."""
    if row.get("forgetting") is None:
        return "–"
    low, high = row.get("forgetting_ci95_low"), row.get("forgetting_ci95_high")
    return f"{row['forgetting']:+.3g}" + ("" if low is None else f" [{low:+.3g}, {high:+.3g}]")


def _forgetting_legend(rows: list[dict]) -> str:
    metric = next((r["forgetting_metric"] for r in rows if r.get("forgetting_metric")), "score")
    return (
        f" forgetting: general-text {metric} after − before training (before: the base model, no adapter), "
        "mean over seeds [95% CI]; docs/forgetting.md."
    )


def paired_text_notes(rows: list[dict], metrics: list[str]) -> list[str]:
    """Per run, each text metric's difference from the reference with its paired-bootstrap interval and p."""
    notes = []
    for row in rows:
        found = [
            f"{short(m)} {row[f'paired_{m}_difference']:+.3g} [{row[f'paired_{m}_ci95_low']:+.3g}, "
            f"{row[f'paired_{m}_ci95_high']:+.3g}] {p_text(row[f'paired_{m}_p'])}"
            for m in metrics
            if row.get(f"paired_{m}_p") is not None
        ]
        if found:
            notes.append(
                f"{row['run']} − {row['reference']} (paired bootstrap over prompts, difference "
                f"[95% interval], p): {'; '.join(found)}."
            )
    return notes


def quality_table(rows: list[dict], metrics: list[str], reference: str | None) -> Table:
    primary = metrics[0]
    intervals = any(r.get(f"{primary}_ci95_low") is not None for r in rows)  # none with one seed
    forgetting = any(r.get("forgetting") is not None for r in rows)
    retention = any(r.get("retention") for r in rows)
    header = ["run", "n", *[short(m) for m in metrics], *(["95% CI"] if intervals else [])]
    header += [
        *[f"Δ{short(m)}" for m in metrics],
        "vs ref",
        "vs base",
        *(["forgetting"] if forgetting else []),
        *(["retention"] if retention else []),
    ]
    body = []
    for row in rows:
        cells = [row["run"], str(row["seeds"]), *[_spread(row, m) for m in metrics]]
        cells += [_interval(row, primary)] if intervals else []
        cells += [format_value(row[f"delta_{m}"], f"delta_{m}") for m in metrics]
        body.append(
            [(c, "") for c in cells]
            + [
                _mark(row, "reference", primary),
                _mark(row, "baseline", primary) if row["kind"] == "method" else ("–", "a baseline"),
            ]
            + ([(forgetting_text(row), "")] if forgetting else [])
            + ([(retention_text(row), "")] if retention else [])
        )
    names = ", ".join(f"{short(m)} = {m}" for m in metrics if short(m) != m)
    legend = (
        f"Test split, mean ± sd over n seeds{'; ' + names if names else ''}. "
        + (f"95% CI: t interval of {primary} over seeds. " if intervals else "")
        + f"Δ: mean − mean of the reference ({reference}) at the same data fraction. "
        f"vs ref / vs base: paired test on the same test examples of {primary} against the reference / "
        f"of {_baseline_metric(rows, primary)} against the strongest baseline: {MARKS}; hover a mark for "
        "its p-value."
        + (_forgetting_legend(rows) if forgetting else "")
        + (RETENTION_LEGEND if retention else "")
    )
    notes = [
        n
        for n in (
            _p_notes(rows, "reference", "p against the reference"),
            _p_notes(rows, "baseline", "p against the strongest baseline"),
        )
        if n
    ] + paired_text_notes(rows, metrics)
    return Table(header, body, legend, notes)


def _rates(row: dict) -> str:
    body, head = row.get("learning_rate"), row.get("head_learning_rate")
    if body is None and head is None:
        return "–"
    return " / ".join(
        format_value(rate) if isinstance(rate, str | None) else f"{rate:g}" for rate in (body, head)
    )


def cost_table(rows: list[dict]) -> Table:
    header = [
        "run",
        "trainable",
        "%",
        "× fewer",
        "lr body / head",
        "train s",
        "RSS above start MiB",
        "artifact MiB",
    ]
    body = []
    for row in rows:
        cells = [
            row["run"],
            format_value(row["trainable_params"]),
            format_value(row["trainable_percent"]),
            format_value(row["fewer_trainable_x"]),
            _rates(row),
            format_value(row["train_seconds"]),
            format_value(row["peak_rss_above_start_mb"]),
            format_value(row["artifact_mb"]),
        ]
        body.append([(c, "") for c in cells])
    legend = (
        "Every seed of a row: means over its n seeds; learning rates as every seed used them. "
        "trainable: trainable parameters (%: of all); × fewer: the reference's trainable parameters over "
        "the run's. lr body / head: peak learning rates of the optimizer's groups (body or adapter, task "
        "head). train s: training seconds, evaluation excluded. RSS above start MiB: the peak resident "
        "memory during training steps (sampled every 50 ms) minus the process's RSS when the run's training "
        "started, so the model loaded before is not in it and runs sharing a process are comparable. "
        "artifact MiB: the .safetensors files the method ships."
    )
    return Table(header, body, legend)
