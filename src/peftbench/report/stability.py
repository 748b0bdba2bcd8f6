"""The stability-plasticity curves in the report: test metric against forgetting with its Pareto
frontier, each method's curve from the base (alpha 0) to the tuned model (alpha 1), and the best alpha per
method under a stated trade-off. The forgetting column and verdict clause are in tables.py and verdict.py."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from peftbench.metrics.stats import summarize  # noqa: E402
from peftbench.report import benchmarks  # noqa: E402
from peftbench.report.collect import RunGroup, higher_is_better  # noqa: E402
from peftbench.report.plots import pareto_plot, png  # noqa: E402

GAIN_KEPT = 0.9  # the trade-off: least forgetting among the alphas keeping >= 90% of the best target gain
UNIT = "nats/token"


def tradeoff_plot(groups: list[RunGroup], metric: str, task: str | None = None) -> bytes | None:
    """Test metric against what was lost, one point per method (means over seeds), with the Pareto
    frontier. The axis to choose: forgetting on general text (task None) or an lm-eval task's score
    lost (before − after; the retention axis)."""
    rows = []
    for group in groups:
        quality = summarize(group.values(metric))["mean"]
        if task is None:
            lost = summarize([(r.get("forgetting") or {}).get("value") for r in group.runs])["mean"]
        else:
            lost = summarize([benchmarks.lost(r, task) for r in group.runs])["mean"]
        if quality is not None and lost is not None:
            rows.append((group.name, lost, quality))
    if task is not None:
        label = f"{task} {benchmarks.metric_of(groups, task)} lost (before − after)"
        return pareto_plot(groups, rows, metric, label)
    return pareto_plot(groups, rows, metric, f"forgetting on general text ({UNIT}, after − before)")


def mean_curve(group: RunGroup) -> list[dict]:
    """The group's curve averaged over seeds, per alpha."""
    by_alpha: dict[float, list[dict]] = {}
    for run in group.runs:
        for point in run.get("interpolation") or []:
            by_alpha.setdefault(point["alpha"], []).append(point)
    return [
        {
            "alpha": alpha,
            "metric": points[0]["metric"],
            "value": summarize([p["value"] for p in points])["mean"],
            "forgetting": summarize([p["forgetting"] for p in points])["mean"],
        }
        for alpha, points in sorted(by_alpha.items())
    ]


def curves(groups: list[RunGroup]) -> dict[str, list[dict]]:
    return {group.name: curve for group in groups if (curve := mean_curve(group))}


def best_alpha(curve: list[dict]) -> dict | None:
    """Least forgetting (else the smallest alpha) among the points keeping >= GAIN_KEPT of the best gain."""
    scored = [p for p in curve if p["value"] is not None]
    base = next((p for p in scored if p["alpha"] == 0), None)
    if not scored or base is None:
        return None
    sign = 1 if higher_is_better(scored[0]["metric"]) else -1
    gains = {p["alpha"]: sign * (p["value"] - base["value"]) for p in scored}
    best = max(gains.values())
    if best <= 0:
        return None
    keeping = [p for p in scored if gains[p["alpha"]] >= GAIN_KEPT * best]
    known = all(p["forgetting"] is not None for p in keeping)
    choice = min(keeping, key=lambda p: (p["forgetting"], p["alpha"]) if known else p["alpha"])
    return {**choice, "gain_kept": gains[choice["alpha"]] / best}


def best_alpha_sentences(groups: list[RunGroup]) -> list[str]:
    sentences = []
    for name, curve in curves(groups).items():
        choice, tuned = best_alpha(curve), next((p for p in curve if p["alpha"] == 1), None)
        base = next((p for p in curve if p["alpha"] == 0 and p["value"] is not None), None)
        if choice is None and base and tuned and tuned["value"] is not None:
            sentences.append(
                f"**{name}**: no α > 0 improves validation {base['metric']} over the base model (α=0, "
                f"{base['value']:.4g}; {tuned['value']:.4g} at α=1), so the curve has no best point."
            )
        if choice is None or tuned is None:
            continue
        lost = (
            f", forgetting {choice['forgetting']:+.3g} against {tuned['forgetting']:+.3g} {UNIT} at α=1"
            if choice["forgetting"] is not None and tuned["forgetting"] is not None
            else ""
        )
        if choice["alpha"] == 1:
            sentences.append(
                f"**{name}**: the tuned model (α=1) is the best point on its curve under the trade-off "
                f"(least forgetting among the α keeping ≥{GAIN_KEPT:.0%} of the best validation gain)."
            )
            continue
        sentences.append(
            f"**{name}** at α={choice['alpha']:g} keeps {100 * choice['gain_kept']:.0f}% of its best "
            f"validation {choice['metric']} gain ({choice['value']:.4g} vs {tuned['value']:.4g} at α=1)"
            f"{lost}; trade-off: the least forgetting among the α keeping ≥{GAIN_KEPT:.0%} of the best gain "
            "over α=0."
        )
    return sentences


def unmeasured_forgetting(groups: list[RunGroup]) -> list[str]:
    """Why forgetting is missing, once per reason, naming the runs it applies to."""
    runs_by_reason: dict[str, list[str]] = {}
    for group in groups:
        for run in group.runs:
            lost = run.get("forgetting") or {}
            if lost.get("value") is None and lost.get("reason"):
                runs_by_reason.setdefault(lost["reason"], []).append(group.name)
    return [
        f"forgetting not measured for {', '.join(dict.fromkeys(names))}: {reason}"
        for reason, names in runs_by_reason.items()
    ]


def curves_plot(groups: list[RunGroup]) -> bytes | None:
    """Validation metric against forgetting along alpha, one line per method, base (0) to tuned (1)."""
    shown = curves(groups)
    if not shown:
        return None
    with_forgetting = all(p["forgetting"] is not None for curve in shown.values() for p in curve)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, curve in shown.items():
        xs = [p["forgetting"] if with_forgetting else p["alpha"] for p in curve]
        line = axis.plot(xs, [p["value"] for p in curve], marker="o", label=name)
        for x, point in zip(xs, curve, strict=True):
            axis.annotate(
                f"α={point['alpha']:g}",
                (x, point["value"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
                color=line[0].get_color(),
            )
        choice = best_alpha(curve)
        if choice:
            x = choice["forgetting"] if with_forgetting else choice["alpha"]
            axis.plot(x, choice["value"], marker="*", markersize=15, color=line[0].get_color())
    metric = next(iter(shown.values()))[0]["metric"]
    starred = any(best_alpha(curve) for curve in shown.values())
    axis.set(
        xlabel=f"forgetting ({UNIT})" if with_forgetting else "α (fraction of the update)",
        ylabel=f"validation {metric}",
        title="stability–plasticity: θ0 + α(θ − θ0)" + ("; ★ = best α (see text)" if starred else ""),
    )
    axis.legend(fontsize=8)
    return png(figure)
