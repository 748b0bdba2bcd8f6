"""What the report says about runs it leaves out: complete runs of an earlier configuration of the
experiment (another config hash, or a method the experiment no longer has), named in one warning."""

from peftbench.grid.grid import SHORT_KEYS
from peftbench.results.run_folder import CURRENT_FILE, RunRecord, Selection

SHOWN_CHANGES = 3  # settings named per left-out run


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _settings(result: dict) -> dict:
    """The settings a change of which makes another run: training, method options, model and data."""
    data = result.get("data") or {}
    return {
        **(result.get("training") or {}),
        **((result.get("method") or {}).get("options") or {}),
        "model": (result.get("model") or {}).get("name"),
        "dataset": data.get("dataset"),
        "data_fraction": data.get("data_fraction"),
    }


def _changes(old: dict, new: dict) -> list[str]:
    before, after = _settings(old), _settings(new)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    shown = [
        f"{SHORT_KEYS.get(k, k)} {_value(before.get(k))}, now {_value(after.get(k))}"
        for k in changed[:SHOWN_CHANGES]
    ]
    return shown + (["…"] if len(changed) > SHOWN_CHANGES else [])


def _describe(run: RunRecord, now: dict[str, dict], dropped: bool) -> str:
    """The run's name, what changed since (against a current run of its configuration, else its
    learning rate), and whether the experiment still has its folder."""
    result = run.result
    name = result.get("run") or run.folder.name
    current = now.get(result.get("cell") or name)
    rate = (result.get("training") or {}).get("learning_rate")
    details = _changes(result, current) if current is not None else []
    if not details and rate is not None:
        details = [f"lr {_value(rate)}"]
    if dropped:
        details.append("no longer in the experiment")
    elif current is not None and not _changes(result, current):
        details.append("other settings changed")
    return f"{name} ({'; '.join(details)})" if details else name


def left_out_warnings(selection: Selection) -> list[str]:
    """One warning for the runs of earlier configurations, one per folder `run` never recorded."""
    found = [
        f"{folder} has no {CURRENT_FILE} (`peftbench run` writes it; older versions did not), so every "
        "complete run there is included, whatever configuration it ran with; `peftbench run` the "
        "experiment again (complete runs are skipped) to report only its current configuration"
        for folder in selection.unrecorded
    ]
    if selection.earlier:
        now = {run.result.get("cell") or run.result.get("run"): run.result for run in selection.current}
        dropped = set(selection.dropped)
        names = ", ".join(_describe(run, now, run.folder in dropped) for run in selection.earlier)
        count = len(selection.earlier)
        found.insert(
            0,
            f"{count} run{'s' if count > 1 else ''} from an earlier configuration left out (not averaged, "
            f"ranked or recommended): {names}",
        )
    return found
