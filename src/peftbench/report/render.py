"""Report renderers: Markdown (figures as files), self-contained HTML (figures inlined), CSV."""

import base64
import csv
import html as html_lib
import io

from peftbench.report import Report


def _format(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _rates(row: dict) -> str:
    """The rates the optimizer used for the body (or adapter) and for the task head; – where none trained."""
    body, head = row.get("learning_rate"), row.get("head_learning_rate")
    if body is None and head is None:
        return "–"
    return " / ".join("–" if rate is None else f"{rate:g}" for rate in (body, head))


def _table(report: Report) -> tuple[list[str], list[list[str]]]:
    header = ["run", "seeds"]
    for metric in report.metrics:
        header += [f"{metric} before", f"{metric} (mean ± sd)", "95% CI", f"Δ{metric}"]
    header += ["vs reference", "trainable", "trainable %", "lr body / head", "artifact MB", "train s"]
    header += ["peak RSS MB"]
    body = []
    for row in report.rows:
        cells = [row["cell"], str(row["seeds"])]
        for metric in report.metrics:
            spread = f" ± {row[f'{metric}_std']:.2g}" if row[f"{metric}_std"] is not None else ""
            cells += [
                _format(row[f"{metric}_before"]),
                _format(row[metric]) + spread,
                row[f"{metric}_ci95"] or "–",
                _format(row[f"delta_{metric}"]),
            ]
        cells += [
            row["paired_test"] or ("reference" if row["cell"] == report.reference else "–"),
            _format(row["trainable_params"]),
            _format(row["trainable_percent"]),
            _rates(row),
            _format(row["artifact_bytes"] / 2**20 if row["artifact_bytes"] else None),
            _format(row["train_seconds"]),
            _format(row["peak_rss_bytes"] / 2**20 if row["peak_rss_bytes"] else None),
        ]
        body.append(cells)
    return header, body


def _search_table(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Methods by candidate rates: the validation score of each search run, the chosen one marked."""
    rates = sorted({t["learning_rate"] for found in summary["methods"].values() for t in found["trials"]})
    header = ["method", *[f"lr {rate:g}" for rate in rates], "chosen", "configured"]
    body = []
    for name, found in summary["methods"].items():
        by_rate = {t["learning_rate"]: t for t in found["trials"]}
        row = [name]
        for rate in rates:
            trial = by_rate.get(rate)
            text = (
                "–"
                if trial is None
                else _format(trial["value"])
                if trial["value"] is not None
                else trial["status"]
            )
            row.append(f"{text} ★" if rate == found["chosen_learning_rate"] else text)
        row += [_format(found["chosen_learning_rate"]), _format(found["configured_learning_rate"])]
        body.append(row)
    return header, body


def _search_note(summary: dict) -> str:
    samples = summary["max_train_samples"] or "all"
    better = "lowest" if summary["lower_is_better"] else "highest"
    return (
        f"Before the final runs, each method trained for {summary['epochs']:g} epoch(s) on {samples} "
        f"training examples (seed {summary['seed']}) at every rate; the rate with the {better} validation "
        f"{summary['metric']} (★) was used for all its final runs. The test split played no part."
    )


NOTES = (
    "Quality is measured on the test split; means, sample standard deviations and 95% t intervals are over "
    "seeds. Δ is mean(run) − mean(reference). Paired tests use the same test examples: exact McNemar on "
    "accuracy with one seed, else a paired bootstrap over test examples (all seeds of an example together); "
    "paired bootstrap of corpus BLEU over prompts (generation). Training seconds exclude "
    "evaluation; peak RSS is the whole process, sampled every 50 ms. Learning rates are the peak rates of "
    "the optimizer's parameter groups: the body or adapter, then the task head."
)


def _md_table(header: list[str], body: list[list[str]]) -> list[str]:
    rows = [header, *body]
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return [lines[0], "|" + "---|" * len(header), *lines[1:]]


def _html_table(header: list[str], body: list[list[str]], table_id: str) -> str:
    escape = html_lib.escape
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"
    rows = ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in body]
    return f"<table id='{table_id}'>" + head + "".join(rows) + "</table>"


def markdown(report: Report, figure_paths: dict[str, str]) -> str:
    header, body = _table(report)
    lines = [f"# {report.title}", "", f"Task: `{report.task}`; reference: `{report.reference}`.", ""]
    lines += ["## Verdict", "", *[f"- {s}" for s in report.verdict], ""]
    if report.warnings:
        lines += ["## Warnings", "", *[f"- {w}" for w in report.warnings], ""]
    lines += ["## Summary", "", *_md_table(header, body), "", NOTES, ""]
    if report.lr_search:
        search_header, search_body = _search_table(report.lr_search)
        lines += ["## Learning-rate search", "", _search_note(report.lr_search), ""]
        lines += [*_md_table(search_header, search_body), ""]
    for title, path in figure_paths.items():
        lines += [f"## {title}", "", f"![{title}]({path})", ""]
    if report.samples:
        lines += ["## Generated samples", ""]
        for sample in report.samples:
            lines += [f"**Prompt:** {sample['prompt']}", "", f"- *reference*: {sample['references'][0]}"]
            lines += [f"- *{run}*: {text}" for run, text in sample["outputs"].items()]
            lines.append("")
    return "\n".join(lines)


STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
.warn{background:#fff4e5;padding:.5em 1em;border-left:4px solid #f0a020}.note{color:#555;font-size:13px}"""


def html(report: Report) -> str:
    escape = html_lib.escape
    header, body = _table(report)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(report.title)}</title>",
        f"<style>{STYLE}</style></head><body><h1>{escape(report.title)}</h1>",
        f"<p>Task: <code>{escape(report.task)}</code>; "
        f"reference: <code>{escape(str(report.reference))}</code>.</p>",
        "<h2>Verdict</h2><ul>",
        *[f"<li>{escape(s).replace('**', '')}</li>" for s in report.verdict],
        "</ul>",
    ]
    if report.warnings:
        parts += [
            "<h2>Warnings</h2><div class='warn'><ul>",
            *[f"<li>{escape(w)}</li>" for w in report.warnings],
        ]
        parts.append("</ul></div>")
    parts += [
        "<h2>Summary</h2>",
        _html_table(header, body, "summary"),
        f"<p class='note'>{escape(NOTES)}</p>",
    ]
    if report.lr_search:
        search_header, search_body = _search_table(report.lr_search)
        parts += [f"<h2>Learning-rate search</h2><p>{escape(_search_note(report.lr_search))}</p>"]
        parts += [_html_table(search_header, search_body, "lr-search")]
    for title, png in report.figures.items():
        encoded = base64.b64encode(png).decode()
        parts.append(
            f"<h2>{escape(title)}</h2><img alt='{escape(title)}' src='data:image/png;base64,{encoded}'>"
        )
    if report.samples:
        parts.append("<h2>Generated samples</h2>")
        for sample in report.samples:
            parts.append(f"<table class='sample'><tr><th>prompt</th><td>{escape(sample['prompt'])}</td></tr>")
            parts.append(f"<tr><th>reference</th><td>{escape(sample['references'][0])}</td></tr>")
            parts += [
                f"<tr><th>{escape(r)}</th><td>{escape(t)}</td></tr>" for r, t in sample["outputs"].items()
            ]
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def summary_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(report.rows[0]))
    writer.writeheader()
    writer.writerows(report.rows)
    return buffer.getvalue()
