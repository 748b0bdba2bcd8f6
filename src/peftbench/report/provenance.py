"""What the runs ran on (peftbench's commit, packages, hardware, model weights, data, test split), listed
once for the report, and a warning for each row whose pooled runs differ in any of it. Runs written
before a field was recorded have none and are left out of its comparison."""

import json
from collections.abc import Callable

from peftbench.report.collect import RunGroup

SHORT = 12  # hex digits shown of a hash or commit


def _git(run: dict):
    environment = run.get("environment") or {}
    git = environment.get("peftbench_git")
    return None if git is None else {"version": environment.get("peftbench"), **git}


def _fingerprint(section: str) -> Callable[[dict], object]:
    return lambda run: (run.get(section) or {}).get("fingerprint")


FIELDS: dict[str, Callable[[dict], object]] = {
    "peftbench": _git,
    "packages": lambda run: (run.get("environment") or {}).get("packages"),
    "hardware": lambda run: (run.get("environment") or {}).get("hardware"),
    "model weights": _fingerprint("model"),
    "data files": _fingerprint("data"),
    "test split": lambda run: (run.get("data") or {}).get("test_ids_sha256"),
}


def _bytes(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


def _files(fingerprint: dict) -> str:
    size = _bytes(fingerprint["bytes"])
    return f"sha256 {fingerprint['sha256'][:SHORT]} ({fingerprint['files']} files, {size})"


def _text(label: str, value) -> str:
    """A short, readable text of a recorded value."""
    if label == "peftbench":
        commit = value.get("commit")
        where = (
            f"commit {commit[:SHORT]}" + (" (dirty)" if value.get("dirty") else "")
            if commit
            else "not a checkout"
        )
        return f"{value.get('version')}, {where}"
    if label == "packages":
        return ", ".join(f"{name} {version}" for name, version in value.items())
    if label == "hardware":
        if "gpu" in value:
            memory, driver = _bytes(value["gpu_memory_bytes"]), value.get("driver") or "unknown"
            return f"{value['gpu']} × {value['gpu_count']} ({memory}, driver {driver})"
        return f"{value['cpu']} (flags: {', '.join(value['cpu_flags']) or 'none of interest'})"
    if label == "test split":
        return f"ids sha256 {value[:SHORT]}"
    if value.get("source") == "hub":
        commit = value.get("commit")
        return f"hub {value['id']} @ {commit[:SHORT] if commit else 'revision not in the local cache'}"
    if "files" in value and isinstance(value["files"], dict):
        return "; ".join(f"{role}: {_files(found)}" for role, found in value["files"].items())
    return f"{value['source']}: {_files(value)}"


def _recorded(runs: list[dict], label: str) -> dict[str, tuple[object, list[dict]]]:
    """The distinct recorded values of `label` (keyed by their JSON), each with the runs that have it."""
    found: dict[str, tuple[object, list[dict]]] = {}
    for run in runs:
        value = FIELDS[label](run)
        if value is not None:
            found.setdefault(json.dumps(value, sort_keys=True), (value, []))[1].append(run)
    return found


def provenance_lines(groups: list[RunGroup]) -> list[tuple[str, str]]:
    """(label, text) per field, once for the whole report; several values are each named with their rows."""
    runs = [run for group in groups for run in group.runs]
    lines = []
    for label in FIELDS:
        found = _recorded(runs, label)
        if len(found) == 1:
            lines.append((label, _text(label, next(iter(found.values()))[0])))
        elif found:
            texts = [
                f"{_text(label, value)} ({', '.join(sorted({r.get('cell') or r['run'] for r in with_it}))})"
                for value, with_it in found.values()
            ]
            lines.append((label, f"differs across runs: {' | '.join(texts)}"))
    return lines


def provenance_warnings(groups: list[RunGroup]) -> list[str]:
    """One line per row and field where the runs pooled in the row recorded different values."""
    warnings = []
    for group in groups:
        for label in FIELDS:
            found = _recorded(group.runs, label)
            if len(found) > 1:
                seeds = "; ".join(
                    f"seed {', '.join(str(r.get('seed')) for r in with_it)}: {_text(label, value)}"
                    for value, with_it in found.values()
                )
                warnings.append(
                    f"{group.name}: the runs pooled in this row differ in {label} ({seeds}); their mean and "
                    "interval mix setups: rerun them on one"
                )
    return warnings
