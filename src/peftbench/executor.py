"""Run an experiment grid: preflight once, then every spec in its own process (or inline), skipping
runs whose folder already holds a complete result for the same config hash."""

import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from peftbench import results
from peftbench.config import ExperimentConfig
from peftbench.grid import RunSpec, expand, expand_methods
from peftbench.runner import baseline_names, preflight, prepare_workspace
from peftbench.worker import execute, spec_to_json


def _is_cached(folder: Path, config_hash: str) -> bool:
    status = results.read_status_file(folder)
    return status.get("status") == "complete" and status.get("config_hash") == config_hash


def _eta(durations: list[float], remaining: int) -> str:
    if not durations:
        return "ETA after the first run"
    seconds = statistics.fmean(durations) * remaining
    return f"ETA {int(seconds // 60)} min {int(seconds % 60)} s"


def _run_in_subprocess(spec: RunSpec, directory: Path) -> int:
    spec_file = directory / ".specs" / f"{spec.name}.json"
    results.write_atomic(spec_file, spec_to_json(spec))
    return subprocess.run([sys.executable, "-m", "peftbench.worker", str(spec_file)], check=False).returncode


def _outcome(folders: list[Path], code: int) -> list[str]:
    """Failures of this spec's runs; a worker that died mid-run leaves 'running', which becomes failed."""
    failed = []
    for folder in folders:
        status = results.read_status_file(folder)
        if status.get("status") == "complete":
            continue
        if status.get("status") in (None, "running"):
            error = f"worker process exited with code {code} before the run finished (crash or out of memory)"
            folder.mkdir(parents=True, exist_ok=True)
            results.mark(folder, "failed", error=error, config_hash=status.get("config_hash"))
            status = {"status": "failed", "error": error}
        failed.append(f"{folder.name}: {status.get('error', status.get('status'))}")
    return failed


def run_grid(
    config: ExperimentConfig, force: bool = False, inline: bool = False, console: Console | None = None
) -> tuple[Path, list[str]]:
    """Run every spec of the experiment; returns its folder and one line per failed run."""
    console = console or Console()
    specs = expand(config)
    directory = Path(config.output_dir) / config.name
    workspace = prepare_workspace(config.model_copy(update={"methods": expand_methods(config.methods)}))
    preflight(workspace)
    baselines = baseline_names(workspace)
    directory.mkdir(parents=True, exist_ok=True)
    results.write_yaml(directory / "experiment.yaml", config.model_dump())
    workspaces = {(config.seed, config.data.data_fraction): workspace} if inline else {}
    del workspace  # subprocess workers load their own; keep the parent small
    failed: list[str] = []
    durations: list[float] = []
    for number, spec in enumerate(specs, 1):
        folders = [directory / name for name in spec.folders(baselines)]
        if not force and all(_is_cached(f, spec.config_hash) for f in folders):
            console.print(
                f"[dim]run {number}/{len(specs)}: {spec.name} already complete (same config), skipped[/dim]"
            )
            continue
        console.rule(f"run {number}/{len(specs)} · {spec.name} · {_eta(durations, len(specs) - number + 1)}")
        start = time.perf_counter()
        code = 0
        if inline:
            key = (spec.config.seed, spec.config.data.data_fraction)
            try:
                workspaces[key] = execute(spec, workspaces.get(key))
            except Exception:  # recorded in the run's status.json; the grid goes on
                code = 1
        else:
            code = _run_in_subprocess(spec, directory)
        durations.append(time.perf_counter() - start)
        failed += _outcome(folders, code)
    return directory, failed
