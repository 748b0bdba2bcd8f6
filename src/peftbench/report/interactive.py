"""The interactive parts of report.html, all inline so the page works offline from file://: a Vega-Lite
Pareto plot (built with altair) whose two axes the reader picks, sortable tables and a CSV download.

The vega, vega-lite and vega-embed JavaScript comes from vl-convert-python's bundle, cached on disk
(PEFTBENCH_CACHE) per vl-convert version: building it takes seconds, reading it back takes milliseconds."""

import base64
import json
from pathlib import Path

PLOT_ID = "pareto"
SORT_SCRIPT = """document.querySelectorAll('table.sortable').forEach(table => {
  const number = text => {
    const plain = text.replace(/,/g, '').replace('\\u2212', '-');
    const found = plain.match(/^[+-]?(\\d+\\.?\\d*|\\.\\d+)(e[+-]?\\d+)?/i);
    return found ? parseFloat(found[0]) : null;
  };
  table.querySelectorAll('thead th').forEach((th, column) => th.addEventListener('click', () => {
    const down = th.getAttribute('aria-sort') === 'ascending';
    table.querySelectorAll('thead th').forEach(other => other.removeAttribute('aria-sort'));
    th.setAttribute('aria-sort', down ? 'descending' : 'ascending');
    const body = table.tBodies[0], sign = down ? -1 : 1;
    const key = row => row.cells[column].textContent.trim();
    [...body.rows].sort((a, b) => {
      const x = number(key(a)), y = number(key(b));
      if (x !== null && y !== null) return sign * (x - y);
      if (x !== null || y !== null) return x === null ? 1 : -1;
      return sign * key(a).localeCompare(key(b));
    }).forEach(row => body.appendChild(row));
  }));
});"""
SORT_STYLE = (
    "table.sortable thead th{cursor:pointer}table.sortable th[aria-sort=ascending]::after{content:' ▲'}"
    "table.sortable th[aria-sort=descending]::after{content:' ▼'}#pareto{margin:1em 0}"
    ".vega-bindings{font-size:13px}.vega-bindings select{margin:0 1.5em 0 .3em;max-width:420px}"
)


def _title(metric: dict) -> str:
    return f"{metric['label']} ({'higher' if metric['higher'] else 'lower'} is better)"


def _axis(axis: str, metrics: list[dict], param: str):
    """The axis' field, with tick labels put back in real units where the metric is plotted as log10."""
    import altair as alt

    logs = json.dumps([m["key"] for m in metrics if m["log"]])
    return alt.X if axis == "x" else alt.Y, {
        "shorthand": f"{axis}:Q",
        "title": None,
        "scale": alt.Scale(zero=False, nice=True),
        "axis": alt.Axis(
            labelExpr=f"indexof({logs}, {param}) >= 0 ? format(pow(10, datum.value), '.3~s') : datum.label"
        ),
    }


def chart_spec(data: dict, validate: bool = False) -> dict:
    """The Vega-Lite spec: per-seed points, per-row means (front rows outlined and joined), hover details.
    Checking it against the Vega-Lite schema takes a second; the tests do it (validate=True)."""
    import altair as alt

    metrics = data["metrics"]
    keys = [m["key"] for m in metrics]
    primary = keys[0]
    x_default = "trainable_params" if "trainable_params" in keys else keys[-1]
    picks = {}
    for axis, default in (("x", x_default), ("y", primary)):
        binding = alt.binding_select(options=keys, labels=[_title(m) for m in metrics], name=f"{axis} axis ")
        picks[axis] = alt.param(name=f"{axis}_metric", value=default, bind=binding)
    titles = json.dumps({m["key"]: _title(m) for m in metrics})
    encode = {}
    for axis in ("x", "y"):
        channel, options = _axis(axis, metrics, f"{axis}_metric")
        encode[axis] = channel(**options)
    tooltip = [
        alt.Tooltip("run:N"),
        alt.Tooltip("seed:N"),
        *[alt.Tooltip(f"{m['key']}:Q", title=m["label"], format=",.4~r") for m in metrics],
    ]
    base = (
        alt.Chart(alt.Data(values=data["points"]))
        .transform_calculate(
            x="datum['plot_' + x_metric]",
            y="datum['plot_' + y_metric]",
            on_front="indexof(datum.front || [], x_metric + '|' + y_metric) >= 0",
        )
        .transform_filter("isFinite(datum.x) && isFinite(datum.y)")
        .encode(**encode, tooltip=tooltip)
    )
    color = alt.Color("run:N", title="run (filled: mean)")
    seeds = base.transform_filter("datum.kind == 'seed'").mark_point(opacity=0.6, size=45).encode(color=color)
    means = (
        base.transform_filter("datum.kind == 'mean'")
        .mark_point(filled=True, size=130, opacity=0.9)
        .encode(
            color=color,
            stroke=alt.condition("datum.on_front", alt.value("black"), alt.value(None)),
            strokeWidth=alt.condition("datum.on_front", alt.value(2), alt.value(0)),
        )
        .properties(name="means")
    )
    on_front = base.transform_filter("datum.kind == 'mean' && datum.on_front")
    line = on_front.mark_line(color="grey", strokeDash=[5, 4]).encode(order="x:Q")
    names = base.transform_filter("datum.kind == 'mean'").mark_text(align="left", dx=8, fontSize=11)
    title = alt.TitleParams(
        text=alt.ExprRef(expr=f"['↑ ' + {titles}[y_metric], '→ ' + {titles}[x_metric]]"),
        anchor="start",
        fontSize=13,
        fontWeight="normal",
    )
    layered = alt.layer(line, seeds, means, names.encode(text="run:N"))
    return (
        layered.add_params(picks["x"], picks["y"])
        .properties(width=640, height=400, title=title)
        .to_dict(validate=validate)
    )


def bundle_path() -> Path:
    import vl_convert
    from altair.utils._importers import vl_version_for_vl_convert

    from peftbench.models.models import cache_root

    return cache_root() / "vega" / f"vega-embed-{vl_convert.__version__}-{vl_version_for_vl_convert()}.js"


def _bundle() -> str:
    """vega + vega-lite + vega-embed as one script, built once per vl-convert version and cached."""
    cached = bundle_path()
    if cached.is_file():
        return cached.read_text()
    import vl_convert
    from altair.utils._importers import vl_version_for_vl_convert

    from peftbench.results.results import write_atomic

    script = vl_convert.javascript_bundle(vl_version=vl_version_for_vl_convert())
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(cached, script)
    return script


def _script_json(value) -> str:
    return json.dumps(value).replace("</", "<\\/")


def pareto_section(data: dict) -> str:
    """The plot's heading, note, container and scripts; the vegaEmbed result is window.paretoResult."""
    if not data or len(data["metrics"]) < 2:
        return ""
    spec = chart_spec(data)
    options = {"actions": False, "renderer": "svg"}
    return (
        "<h2>Explore: any two metrics</h2>"
        "<p class='note'>Pick the x and y metrics. Small rings: one per seed; filled dots: the row's "
        "mean over its seeds. Rows on the Pareto front of the chosen pair (no other row is as good on both "
        "and better on one, each metric in its own direction) are outlined and joined by the dashed line. "
        "Hover a point for every metric of that run. Counts and sizes are plotted on a log scale.</p>"
        f"<div id='{PLOT_ID}'></div><script>{_bundle()}</script>"
        f"<script>window.paretoResult=null;vegaEmbed('#{PLOT_ID}',{_script_json(spec)},"
        f"{_script_json(options)}).then(r=>{{window.paretoResult=r;}}).catch(console.error);</script>"
    )


def csv_link(text: str) -> str:
    encoded = base64.b64encode(text.encode()).decode()
    return (
        "<p><a download='summary.csv' href='data:text/csv;base64,"
        f"{encoded}'>Download the summary (CSV)</a>: every row and column behind the tables.</p>"
    )


def sort_script() -> str:
    return f"<script>{SORT_SCRIPT}</script>"
