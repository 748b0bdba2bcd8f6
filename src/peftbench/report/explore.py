"""The data behind the report's interactive Pareto plot: every recorded metric of every run, one point per
seed and one per row (the mean over its seeds), and which rows are on the Pareto front of each pair of
metrics.

The front is computed here rather than in the browser: Vega-Lite has no transform that tests each point
against every other one, and with a dozen metrics and a few rows every pair costs nothing in Python."""

import math
import re
from dataclasses import asdict, dataclass

from peftbench.metrics.stats import summarize
from peftbench.report.benchmarks import first_scored, metric_of, task_names
from peftbench.report.collect import RunGroup, higher_is_better

MIB = 2**-20


@dataclass(frozen=True)
class Metric:
    key: str  # the field name in each point
    label: str
    higher: bool  # higher is better
    log: bool = False  # plotted as log10: counts and sizes that span orders of magnitude


@dataclass(frozen=True)
class Source:
    metric: Metric
    path: tuple[str, ...]  # where result.json holds it
    scale: float = 1.0


COSTS = (
    Source(
        Metric("trainable_params", "trainable parameters", False, log=True),
        ("efficiency", "trainable_params"),
    ),
    Source(Metric("artifact_mib", "artifact MiB", False, log=True), ("efficiency", "artifact_bytes"), MIB),
    Source(Metric("train_seconds", "training s", False), ("efficiency", "train_seconds")),
    Source(
        Metric("peak_rss_above_start_mib", "peak RSS above start MiB", False),
        ("efficiency", "peak_rss_above_start_bytes"),
        MIB,
    ),
    Source(
        Metric("cuda_peak_allocated_mib", "peak GPU memory MiB", False),
        ("efficiency", "cuda_peak_allocated_bytes"),
        MIB,
    ),
    Source(
        Metric("train_tokens_per_second", "training tokens/s", True),
        ("efficiency", "train_tokens_per_second"),
    ),
    Source(
        Metric("eval_tokens_per_second", "evaluation tokens/s", True),
        ("metrics", "test", "eval_tokens_per_second"),
    ),
)


def _lookup(run: dict, source: Source) -> float | None:
    value = run
    for key in source.path:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return value * source.scale


def _quality_sources(groups: list[RunGroup], headline: list[str]) -> list[Source]:
    """The headline metrics first, then every other numeric test metric any run recorded."""
    names = dict.fromkeys(headline)
    for group in groups:
        for run in group.runs:
            test = (run.get("metrics") or {}).get("test") or {}
            names.update({k: None for k, v in test.items() if isinstance(v, int | float)})
    names.pop("eval_tokens_per_second", None)
    return [Source(Metric(name, name, higher_is_better(name)), ("metrics", "test", name)) for name in names]


def _forgetting_source(groups: list[RunGroup]) -> Source:
    measured = [r["forgetting"] for g in groups for r in g.runs if (r.get("forgetting") or {}).get("metric")]
    metric = measured[0]["metric"] if measured else "loss"
    label = f"forgetting (general-text {metric} after − before)"
    return Source(Metric("forgetting", label, higher_is_better(metric)), ("forgetting", "value"))


def _retention_sources(groups: list[RunGroup]) -> list[Source]:
    """Each lm-eval task's change after − before (docs/retention.md); higher is better for a task whose
    metric is (accuracy), lower for one like perplexity."""
    sources = []
    for task in task_names(groups):
        higher = first_scored(groups, task).get("higher_is_better", True)
        label = f"retention: {task} {metric_of(groups, task)} after − before"
        key = "retention_" + re.sub(r"\W", "_", task)
        sources.append(Source(Metric(key, label, higher), ("retention", "tasks", task, "change")))
    return sources


def plotted(metric: Metric, value: float | None) -> float | None:
    if value is None:
        return None
    if metric.log:
        return math.log10(value) if value > 0 else None
    return value


def _point(run: str, seed: str, kind: str, values: dict[str, float | None], metrics: list[Metric]) -> dict:
    point = {"run": run, "seed": seed, "kind": kind, **{m.key: values[m.key] for m in metrics}}
    point.update({f"plot_{m.key}": plotted(m, values[m.key]) for m in metrics})
    return point


def front(points: list[tuple[float, float]], higher: tuple[bool, bool]) -> list[int]:
    """Indices of the points no other point matches or beats on both axes while differing from it."""
    signs = [1 if h else -1 for h in higher]
    scored = [(x * signs[0], y * signs[1]) for x, y in points]
    return [
        i
        for i, (x, y) in enumerate(scored)
        if not any(ox >= x and oy >= y and (ox, oy) != (x, y) for ox, oy in scored)
    ]


def _mark_fronts(means: list[dict], metrics: list[Metric]) -> None:
    """Each mean point's list of "x|y" metric pairs whose Pareto front it is on."""
    for point in means:
        point["front"] = []
    for x in metrics:
        for y in metrics:
            if x.key == y.key:
                continue
            shown = [p for p in means if None not in (p[f"plot_{x.key}"], p[f"plot_{y.key}"])]
            pairs = [(p[f"plot_{x.key}"], p[f"plot_{y.key}"]) for p in shown]
            for i in front(pairs, (x.higher, y.higher)):
                shown[i]["front"].append(f"{x.key}|{y.key}")


def explore_data(groups: list[RunGroup], headline: list[str]) -> dict:
    """{"metrics": [Metric as dict], "points": [...]}: only metrics that at least two rows recorded."""
    sources = [*_quality_sources(groups, headline), _forgetting_source(groups), *_retention_sources(groups)]
    sources += COSTS
    seeds, means = [], []
    for group in groups:
        per_seed = [{s.metric.key: _lookup(run, s) for s in sources} for run in group.runs]
        mean = {s.metric.key: summarize([v[s.metric.key] for v in per_seed])["mean"] for s in sources}
        means.append(mean)
        seeds += [
            (group.name, str(run.get("seed")), values)
            for run, values in zip(group.runs, per_seed, strict=True)
        ]
    kept = [
        s.metric for s in sources if sum(plotted(s.metric, m[s.metric.key]) is not None for m in means) >= 2
    ]
    mean_points = [
        _point(g.name, f"mean of {len(g.runs)}", "mean", m, kept) for g, m in zip(groups, means, strict=True)
    ]
    _mark_fronts(mean_points, kept)
    seed_points = [_point(run, seed, "seed", values, kept) for run, seed, values in seeds]
    return {"metrics": [asdict(m) for m in kept], "points": mean_points + seed_points}
