"""Retention on lm-eval tasks in the report (result.json's `retention`, docs/retention.md): each row's
before → after per task and the change with its interval, the runs it was not measured for, and the
retention lost per run for the stability–plasticity plot."""

from peftbench.metrics.stats import summarize
from peftbench.report.collect import RunGroup

LEGEND = (
    " retention: lm-eval task score before (base model) → after training, change after − before "
    "[95% CI: paired bootstrap over the task's items with one seed, t interval over seeds with several]; "
    "docs/retention.md."
)


def _tasks(run: dict) -> dict:
    return (run.get("retention") or {}).get("tasks") or {}


def task_names(groups: list[RunGroup]) -> list[str]:
    """Every task any run scored, in the order the runs list them."""
    return list(dict.fromkeys(task for g in groups for r in g.runs for task in _tasks(r)))


def _over_seeds(found: list[dict]) -> dict:
    changes = summarize([f["change"] for f in found])
    one = found[0] if len(found) == 1 else None
    return {
        "metric": found[0]["metric"],
        "higher_is_better": found[0].get("higher_is_better", True),
        "before": summarize([f["before"] for f in found])["mean"],
        "after": summarize([f["after"] for f in found])["mean"],
        "change": changes["mean"],
        "change_ci95_low": one["change_ci95_low"] if one else changes["ci95_low"],
        "change_ci95_high": one["change_ci95_high"] if one else changes["ci95_high"],
        "seconds": summarize([f.get("seconds") for f in found])["mean"],
    }


def retention_summary(group: RunGroup) -> dict:
    """The row's `retention`: per task, means over the seeds that scored it; None when none did."""
    by_task: dict[str, list[dict]] = {}
    for run in group.runs:
        for task, found in _tasks(run).items():
            by_task.setdefault(task, []).append(found)
    return {"retention": {task: _over_seeds(found) for task, found in by_task.items()} or None}


def retention_text(row: dict) -> str:
    """`task metric before → after (change [low, high])` per task, one line each."""
    shown = []
    for task, found in (row.get("retention") or {}).items():
        low, high = found["change_ci95_low"], found["change_ci95_high"]
        interval = "" if low is None else f" [{low:+.3g}, {high:+.3g}]"
        shown.append(
            f"{task} {found['metric']} {found['before']:.3g} → {found['after']:.3g} "
            f"({found['change']:+.3g}{interval})"
        )
    return "; ".join(shown) or "–"


def lost(run: dict, task: str) -> float | None:
    """Retention lost on `task` (before − after, in the direction where more is worse), None if unscored."""
    found = _tasks(run).get(task)
    if not found or found.get("change") is None:
        return None
    return -found["change"] if found.get("higher_is_better", True) else found["change"]


def first_scored(groups: list[RunGroup], task: str) -> dict:
    """The first run's result for `task` (its metric and direction)."""
    return next((_tasks(r)[task] for g in groups for r in g.runs if task in _tasks(r)), {})


def metric_of(groups: list[RunGroup], task: str) -> str:
    return first_scored(groups, task).get("metric", "score")


def unmeasured_retention(groups: list[RunGroup]) -> list[str]:
    """Why retention is missing, once per reason, naming the runs it applies to."""
    runs_by_reason: dict[str, list[str]] = {}
    for group in groups:
        for run in group.runs:
            reason = (run.get("retention") or {}).get("reason")
            if reason:
                runs_by_reason.setdefault(reason, []).append(group.name)
    return [
        f"retention not measured for {', '.join(dict.fromkeys(names))}: {reason}"
        for reason, names in runs_by_reason.items()
    ]
