"""Report renderers: Markdown (figures as files), self-contained HTML (figures inlined), CSV. Markdown
and HTML print the same verdict, tables, legends and notes."""

import base64
import csv
import html as html_lib
import io
import re

from peftbench.report.interactive import SORT_STYLE, csv_link, pareto_section, sort_script
from peftbench.report.model import Report
from peftbench.report.summary import format_value
from peftbench.report.tables import Table, cost_table, quality_table

NOTES = (
    "Paired tests use the same test examples: exact McNemar on accuracy with one seed, else a paired "
    "bootstrap over test examples (all seeds of an example together); generation's text metrics (BLEU, "
    "NIST, METEOR, ROUGE, CIDEr, chrF, TER) and perplexity are resampled by prompt (all its references "
    "together; NIST's information weights and CIDEr's document frequencies stay the whole test set's), "
    "causal LM perplexity by document."
)


def search_table(summary: dict) -> Table:
    """Methods by candidate rates: the validation score of each search run, the chosen one starred."""
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
                else format_value(trial["value"])
                if trial["value"] is not None
                else trial["status"]
            )
            row.append(f"{text} ★" if rate == found["chosen_learning_rate"] else text)
        row += [format_value(found["chosen_learning_rate"]), format_value(found["configured_learning_rate"])]
        body.append([(c, "") for c in row])
    samples = summary["max_train_samples"] or "all"
    better = "lowest" if summary["lower_is_better"] else "highest"
    legend = (
        f"Before the final runs, each method trained for {summary['epochs']:g} epoch(s) on {samples} "
        f"training examples (seed {summary['seed']}) at every rate; the rate with the {better} validation "
        f"{summary['metric']} (★) was used for all its final runs. The test split played no part."
    )
    return Table(header, body, legend + _search_strategy(summary))


def _rung_points(summary: dict) -> str:
    """The steps the runs were scored at (the first past the warm-up), when every method's were the same;
    else, and in summaries that predate them, the configured fractions of a run."""
    plans = {tuple(found["rung_steps"]) for found in summary["methods"].values() if "rung_steps" in found}
    if len(plans) == 1:
        *pauses, end = plans.pop()
        if not pauses:
            return f"the end of their run only ({end} steps: too short for a rung past the warm-up)"
        return f"steps {', '.join(map(str, pauses))} and {end} (the end) of their run"
    return f"{', '.join(summary['halving']['rung_fractions'])} of their run"


def _search_strategy(summary: dict) -> str:
    """How the search spent its steps: exhaustive, or successive halving (summaries before it: exhaustive)."""
    steps = summary.get("steps") or {}
    spent = (
        f" It trained {steps['spent']} optimizer steps, {steps['spent'] / steps['exhaustive']:.0%} of the "
        f"{steps['exhaustive']} of an exhaustive search."
        if steps.get("exhaustive")
        else ""
    )
    if summary.get("strategy") != "halving":
        return " Search: exhaustive (every rate trained all its epochs)." + spent
    halving = summary["halving"]
    return (
        f" Search: successive halving (Optuna's SuccessiveHalvingPruner): rates were scored after "
        f"{_rung_points(summary)}, each rung keeping the best "
        f"1/{halving['reduction_factor']} (at least one); the others were pruned (their last score in "
        "lr_search.json), and the chosen rate's run is the full run." + spent
    )


def sections(report: Report) -> list[tuple[str, Table]]:
    """The tables in page order, with their headings."""
    found = [
        ("Quality", quality_table(report.rows, report.metrics, report.reference)),
        ("Cost", cost_table(report.rows)),
    ]
    if report.lr_search:
        found.append(("Learning-rate search", search_table(report.lr_search)))
    return found


def _md_table(table: Table) -> list[str]:
    rows = [table.header, *[[text for text, _ in row] for row in table.rows]]
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return [lines[0], "|" + "---|" * len(table.header), *lines[1:]]


def markdown(report: Report, figure_paths: dict[str, str]) -> str:
    lines = [f"# {report.title}", "", f"Task: `{report.task}`; reference: `{report.reference}`.", ""]
    lines += ["## Verdict", "", *[f"- {s}" for s in report.verdict], ""]
    if report.warnings:
        lines += ["## Warnings", "", *[f"- {w}" for w in report.warnings], ""]
    for heading, table in sections(report):
        lines += [f"## {heading}", "", *_md_table(table), "", table.legend, ""]
        lines += [*[f"- {note}" for note in table.notes], ""] if table.notes else []
    lines += [NOTES, ""]
    for title, path in figure_paths.items():
        lines += [f"## {title}", "", f"![{title}]({path})", ""]
        lines += [report.figure_notes[title], ""] if title in report.figure_notes else []
    if report.samples:
        lines += ["## Generated samples", ""]
        for sample in report.samples:
            lines += [f"**Prompt:** {sample['prompt']}", "", f"- *reference*: {sample['references'][0]}"]
            lines += [f"- *{run}*: {text}" for run, text in sample["outputs"].items()]
            lines.append("")
    if report.provenance:
        lines += ["## Provenance", "", *[f"- **{what}**: {value}" for what, value in report.provenance], ""]
    return "\n".join(lines)


STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1160px;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}td[title]{cursor:help;text-decoration:underline dotted}
img{max-width:100%;border:1px solid #eee}table.sample td{white-space:normal;text-align:left}
.warn{background:#fff4e5;padding:.5em 1em;border-left:4px solid #f0a020}.note{color:#555;font-size:13px}
ul.notes{color:#555;font-size:12px}"""


def _inline(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html_lib.escape(text))


def _cell(text: str, hover: str) -> str:
    title = f" title='{html_lib.escape(hover, quote=True)}'" if hover else ""
    return f"<td{title}>{html_lib.escape(text)}</td>"


def _html_table(table: Table, table_id: str) -> str:
    """Click a header to sort by that column (numbers as numbers)."""
    head = "<tr>" + "".join(f"<th>{html_lib.escape(h)}</th>" for h in table.header) + "</tr>"
    rows = ["<tr>" + "".join(_cell(text, hover) for text, hover in row) + "</tr>" for row in table.rows]
    body = "".join(rows)
    parts = [
        f"<table id='{table_id}' class='sortable'><thead>{head}</thead><tbody>{body}</tbody></table>",
        f"<p class='note'>{_inline(table.legend)}</p>",
    ]
    if table.notes:
        parts.append("<ul class='notes'>" + "".join(f"<li>{_inline(n)}</li>" for n in table.notes) + "</ul>")
    return "".join(parts)


def html(report: Report) -> str:
    escape = html_lib.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(report.title)}</title>",
        f"<style>{STYLE}{SORT_STYLE}</style></head><body><h1>{escape(report.title)}</h1>",
        f"<p>Task: <code>{escape(report.task)}</code>; "
        f"reference: <code>{escape(str(report.reference))}</code>.</p>",
        "<h2>Verdict</h2><ul id='verdict'>",
        *[f"<li>{_inline(s)}</li>" for s in report.verdict],
        "</ul>",
    ]
    if report.warnings:
        parts += [
            "<h2>Warnings</h2><div class='warn'><ul>",
            *[f"<li>{escape(w)}</li>" for w in report.warnings],
        ]
        parts.append("</ul></div>")
    for heading, table in sections(report):
        parts += [f"<h2>{escape(heading)}</h2>", _html_table(table, heading.lower().replace(" ", "-"))]
    parts += [f"<p class='note'>{escape(NOTES)}</p>", csv_link(summary_csv(report))]
    parts.append(pareto_section(report.explore))
    for title, png in report.figures.items():
        encoded = base64.b64encode(png).decode()
        parts.append(
            f"<h2>{escape(title)}</h2><img alt='{escape(title)}' src='data:image/png;base64,{encoded}'>"
        )
        if title in report.figure_notes:
            parts.append(f"<p class='note'>{escape(report.figure_notes[title])}</p>")
    if report.samples:
        parts.append("<h2>Generated samples</h2>")
        for sample in report.samples:
            parts.append(f"<table class='sample'><tr><th>prompt</th><td>{escape(sample['prompt'])}</td></tr>")
            parts.append(f"<tr><th>reference</th><td>{escape(sample['references'][0])}</td></tr>")
            parts += [
                f"<tr><th>{escape(r)}</th><td>{escape(t)}</td></tr>" for r, t in sample["outputs"].items()
            ]
            parts.append("</table>")
    if report.provenance:
        parts.append("<h2>Provenance</h2><ul id='provenance'>")
        parts += [
            f"<li><strong>{escape(what)}</strong>: {escape(value)}</li>" for what, value in report.provenance
        ]
        parts.append("</ul>")
    parts += [sort_script(), "</body></html>"]
    return "\n".join(parts)


def summary_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(report.rows[0]))
    writer.writeheader()
    writer.writerows(report.rows)
    return buffer.getvalue()
