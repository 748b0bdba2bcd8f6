"""The verdict: what the summary rows support, baselines first.

A method "learned" when it beats the strongest baseline (majority class, untrained / zero-shot model)
on the same test examples: by the paired test when there is one, else by the baseline lying outside the
method's 95% interval over seeds. Shares of the reference ("x% of full's accuracy") are only given when
both numbers cleared the baselines and are off the noise floor near zero."""

from peftbench.metrics.stats import SIGNIFICANCE
from peftbench.report.collect import higher_is_better

NEAR_ZERO_SHARE = 0.01  # a value under 1% of the metric's full scale is treated as zero
FRACTIONS = {"accuracy", "f1_macro"}  # 0-1; text metrics (BLEU, ROUGE, chrF) are 0-100, NIST and CIDEr below
BASELINE_WORDS = {"majority": "the majority class", "untrained": "the untrained model"}
COST_CRITERIA = (
    ("trainable_params", "Fewest trainable parameters", "{:,.0f}"),
    ("peak_rss_above_start_mb", "Least memory (peak RSS above start)", "{:,.0f} MiB"),
    ("train_seconds", "Fastest training", "{:.3g} s"),
)


OWN_SCALES = {"nist": 10, "cider": 10}  # NIST reaches about 10-15 on E2E; CIDEr-D at most 10


def _scale(metric: str) -> int:
    return 1 if metric in FRACTIONS else OWN_SCALES.get(metric, 100)


def near_zero(value: float, metric: str) -> bool:
    return abs(value) < NEAR_ZERO_SHARE * _scale(metric)


def _at_floor(row: dict, metric: str) -> bool:
    return higher_is_better(metric) and near_zero(row[metric], metric)


def _better(value: float, other: float, metric: str) -> bool:
    return value > other if higher_is_better(metric) else value < other


def baseline_words(row: dict, task: str) -> str:
    method = (row.get("baseline") or "").removeprefix("baseline-").split("@")[0]
    if method == "untrained" and task != "classification":
        return "the zero-shot model"
    return BASELINE_WORDS.get(method, row.get("baseline") or "the baselines")


def p_text(p: float) -> str:
    """A bootstrap of 1000 resamples cannot show p below 0.001; neither is printed as p=0."""
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def _p(p: float | None) -> str:
    return "" if p is None else f", {p_text(p)}"


def learned(row: dict, metric: str) -> bool | None:
    """True: beats the strongest baseline beyond noise; False: does not; None: one seed, no paired test.
    Judged on the row's baseline metric (the task's learning metric) where the row names one."""
    metric = row.get("baseline_metric") or metric
    value, base = row.get(metric), row.get("baseline_value")
    if value is None or base is None:
        return None
    if not _better(value, base, metric):
        return False
    if row.get("baseline_p") is not None:
        return row["baseline_p"] < SIGNIFICANCE
    low, high = row.get(f"{metric}_ci95_low"), row.get(f"{metric}_ci95_high")
    if low is None:
        return None
    return not low <= base <= high


def _against_baseline(row: dict, metric: str) -> str:
    metric = row.get("baseline_metric") or metric
    return f"{metric} {row[metric]:.4g} vs {row['baseline_value']:.4g}{_p(row.get('baseline_p'))}"


def _against_reference(row: dict, reference: dict, metric: str) -> str:
    value, ref_value, name = row[metric], reference[metric], reference["run"]
    significance = (
        "no paired test"
        if row.get("reference_p") is None
        else ("significant" if row["reference_p"] < SIGNIFICANCE else "not significant")
        + _p(row["reference_p"])
    )
    if higher_is_better(metric) and not (near_zero(value, metric) or near_zero(ref_value, metric)):
        quality = (
            f"reaches {100 * value / ref_value:.1f}% of {name}'s {metric} ({value:.4g} vs {ref_value:.4g})"
        )
    else:
        quality = f"has {metric} {value:.4g} against {name}'s {ref_value:.4g}"
    return f"{quality}; difference {significance}"


def method_sentence(row: dict, reference: dict | None, metric: str, task: str) -> str:
    name, status = f"**{row['run']}**", learned(row, metric)
    if row.get(metric) is None:
        return f"{name}: no {metric} measured."
    if status is False:
        return f"{name} did not learn beyond {baseline_words(row, task)} ({_against_baseline(row, metric)})."
    if status is None:
        evidence = f" ({_against_baseline(row, metric)})" if row.get("baseline_value") is not None else ""
        head = (
            f"{name}: whether it learned beyond {baseline_words(row, task)} is unverified{evidence}: "
            "one seed and no paired test"
        )
    else:
        head = f"{name} learned beyond {baseline_words(row, task)} ({_against_baseline(row, metric)})"
    if reference is None or reference is row or reference.get(metric) is None:
        return head + "."
    if learned(reference, metric) is False:
        return f"{head}; the reference {reference['run']} did not, so no share of it is given."
    return f"{head}; it {_against_reference(row, reference, metric)}."


def _reference_for(row: dict, rows: list[dict]) -> dict | None:
    return next((r for r in rows if r["run"] == row.get("reference")), None)


def best_lines(methods: list[dict], metric: str, task: str) -> list[str]:
    """The best method per criterion; cost winners that did not learn are marked as such."""
    lines = []
    credible = [r for r in methods if learned(r, metric) is not False and r.get(metric) is not None]
    if credible:
        sign = 1 if higher_is_better(metric) else -1
        best = max(credible, key=lambda r: sign * r[metric])
        floor = f", near zero on its 0-{_scale(metric)} scale" if _at_floor(best, metric) else ""
        lines.append(f"Best quality: **{best['run']}** ({metric} {best[metric]:.4g}{floor}).")
    else:
        lines.append(f"Best quality: none; no method learned beyond the baselines on {metric}.")
    for key, label, form in COST_CRITERIA:
        measured = [r for r in methods if r.get(key) is not None]
        if measured:
            best = min(measured, key=lambda r: r[key])
            caveat = " (but it did not learn beyond the baselines)" if learned(best, metric) is False else ""
            lines.append(f"{label}: **{best['run']}** ({form.format(best[key])}){caveat}.")
    return lines + least_forgetting(methods, metric)


def least_forgetting(methods: list[dict], metric: str) -> list[str]:
    """Named only among the methods that learned: one that learned nothing also forgets nothing, so
    naming it would only restate that it did not learn."""
    measured = [r for r in methods if r.get("forgetting") is not None]
    if not measured:
        return []
    what = measured[0].get("forgetting_metric") or "score"
    candidates = [r for r in measured if learned(r, metric) is True]
    if not candidates:
        return [
            "Least forgetting: none named; no method with forgetting measured is shown to have learned "
            "beyond the baselines (a method that learned nothing forgets nothing)."
        ]
    lower = higher_is_better(what) is False
    best = min(candidates, key=lambda r: r["forgetting"] if lower else -r["forgetting"])
    return [
        f"Least forgetting among the methods that learned: **{best['run']}** ({what} after − before "
        f"{best['forgetting']:+.4g})."
    ]


def recommendation(methods: list[dict], metric: str) -> str:
    """The cheapest method (trainable parameters) that learned and is not significantly worse than the
    best one's reference; the caveat names the seeds and what the tests can show."""
    seeds = min((r["seeds"] for r in methods), default=0)
    caveat = (
        f"only {seeds} seed{'s' if seeds > 1 else ''} per method, so rerun with 3+ seeds before relying on it"
        if seeds < 3
        else f"{seeds} seeds per method"
    ) + "; 'not significant' means no difference was detected, not that the methods are equal"
    winners = [r for r in methods if learned(r, metric) is True]
    if not winners:
        return (
            "Recommendation: none yet; no method's lead over the baselines is beyond noise. Train longer, "
            f"on more data or at another learning rate (caveat: {caveat})."
        )
    sign = 1 if higher_is_better(metric) else -1
    best = max(winners, key=lambda r: sign * r[metric])
    matching = [
        r
        for r in winners
        if r is best
        or (r.get("reference") == best["run"] and (r.get("reference_p") or 0) >= SIGNIFICANCE)
        or (best.get("reference") == r["run"] and (best.get("reference_p") or 0) >= SIGNIFICANCE)
    ]
    if _at_floor(best, metric):
        return (
            f"Recommendation: none yet; **{best['run']}** learned beyond the baselines, but its {metric} "
            f"{best[metric]:.4g} is near zero on a 0-{_scale(metric)} scale. Train longer, on more data or "
            f"at another learning rate (caveat: {caveat})."
        )
    cheapest = min(matching, key=lambda r: r.get("trainable_params") or float("inf"))
    why = (
        "best quality"
        if cheapest is best
        else f"no significant {metric} difference from {best['run']} with fewer trainable parameters"
    )
    against = best if cheapest is not best else _reference_for(cheapest, methods) or best
    return f"Recommendation: **{cheapest['run']}** ({why}{_costs(cheapest, against)}; caveat: {caveat})."


def _share(row: dict, other: dict, key: str, form: str, word: str) -> str | None:
    """'165,508 trainable parameters (0.73% of full's)'; None where the row has no such number."""
    if row.get(key) is None:
        return None
    text = f"{form.format(row[key])} {word}"
    if row is not other and other.get(key):
        text += f" ({100 * row[key] / other[key]:.2g}% of {other['run']}'s)"
    return text


def _costs(row: dict, best: dict) -> str:
    """What the recommended method costs against the best one (itself best: its reference), and how
    sure its learning is."""
    costs = [
        _share(row, best, "trainable_params", "{:,.0f}", "trainable parameters"),
        _share(row, best, "train_seconds", "{:.3g} s", "of training"),
    ]
    known = [c for c in costs if c]
    cost = f"; it costs {' and '.join(known)}" if known else ""
    sure = "" if row.get("baseline_p") is None else f"; beyond the baselines at {p_text(row['baseline_p'])}"
    return cost + sure


def with_forgetting(sentence: str, row: dict) -> str:
    """The method's sentence ends with its forgetting on general text, where it was measured."""
    if row.get("forgetting") is None:
        return sentence
    low, what = row.get("forgetting_ci95_low"), row.get("forgetting_metric") or "score"
    interval = "" if low is None else f", 95% CI {low:+.3g} to {row['forgetting_ci95_high']:+.3g}"
    value = f"{row['forgetting']:+.3g}{interval} ({what} after − before)"
    return f"{sentence[:-1]}; forgetting on general text {value}."


def verdict(rows: list[dict], metric: str, task: str) -> list[str]:
    """Recommendation first, then the best method per criterion, then one sentence per method."""
    methods = [r for r in rows if r["kind"] == "method"]
    if not methods:
        return ["No trained method to judge; only baselines ran."]
    sentences = [
        with_forgetting(method_sentence(r, _reference_for(r, rows), metric, task), r) for r in methods
    ]
    return [recommendation(methods, metric), *best_lines(methods, metric, task), *sentences]
