"""Run an experiment grid: preflight once, then every spec in its own process (forked from a warm
server, or started fresh) or inline, skipping runs whose folder already holds a complete result for the
same config hash."""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout
from rich.console import Console

from peftbench.config.config import ExperimentConfig
from peftbench.errors import PeftbenchError
from peftbench.execution import warm_worker
from peftbench.execution.display import GridDisplay
from peftbench.execution.launch import RayOptions, launch_command
from peftbench.execution.ray_executor import run_on_ray
from peftbench.grid import lr_search
from peftbench.grid.grid import RunSpec, expand, expand_methods
from peftbench.grid.halving import run_halving
from peftbench.inputs.run_inputs import preflight, prepare_inputs
from peftbench.results import results, run_folder
from peftbench.results.progress import LOG_FILE, PROGRESS_FILE
from peftbench.results.run_folder import read_run
from peftbench.results.run_log import output_to
from peftbench.run.baselines import baseline_names
from peftbench.run.interrupts import Interrupted, SignalGuard
from peftbench.run.worker import execute, spec_to_json
from peftbench.training.training import with_resolved_precision


def _run_in_subprocess(spec: RunSpec, directory: Path, guard: SignalGuard, log: Path | None) -> int:
    spec_file = directory / ".specs" / f"{spec.name}.json"
    results.write_atomic(spec_file, spec_to_json(spec))
    try:
        if warm_worker.usable(spec.config):
            return warm_worker.run(spec_file, log, guard)
        return guard.run(launch_command(spec, spec_file), log)
    finally:
        spec_file.unlink(missing_ok=True)  # the worker has read it; nothing of the config stays behind


def _unfinished(code: int, interrupted: bool) -> tuple[str, str]:
    if interrupted:
        return "interrupted", f"stopped by a signal (worker exit code {code})"
    return (
        "failed",
        f"worker process exited with code {code} before the run finished (crash or out of memory)",
    )


def _log_file(folder: Path) -> Path | None:
    """Where a spec's output goes: its first run folder's train.log; None (the terminal) when that folder
    cannot be made, which the run then fails on and reports itself."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder / LOG_FILE


def _failures_after_worker(folders: list[Path], code: int, interrupted: bool = False) -> list[str]:
    """Failures of this spec's runs, each pointing to the spec's log; a worker that died mid-run leaves
    'running', which becomes failed (or interrupted, when a signal stopped it)."""
    log = folders[0] / LOG_FILE
    where = f" (log: {log})" if log.is_file() else ""
    failed = []
    for folder in folders:
        run = read_run(folder, check_process=False)  # the worker is gone whatever its pid says now
        if run.status == "complete":
            continue
        error = run.error or run.status
        if run.status in ("missing", "unknown", "running"):
            status, error = _unfinished(code, interrupted)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                run_folder.write_status(folder, status, error=error, config_hash=run.config_hash)
            except OSError as exc:
                error += f"; its status could not be written ({exc})"
        failed.append(f"{folder.name}: {error}{where}")
    return failed


@dataclass
class _GridLoop:
    """Runs specs in order, skipping cached ones, shown on the grid's display."""

    directory: Path
    baselines: list[str]
    console: Console
    display: GridDisplay
    force: bool
    inline: bool
    verbose: bool = False  # the runs' own output on the terminal instead of in their train.log
    inputs_by_data: dict = field(default_factory=dict)  # inline only: one per seed and data
    ray: RayOptions | None = None  # None: run here, one spec after another
    guard: SignalGuard = field(default_factory=SignalGuard)

    def run(self, specs: list[RunSpec], phase: str) -> list[str]:
        failed: list[str] = []
        pending = []
        for number, spec in enumerate(specs, 1):
            folders = [self.directory / name for name in spec.folders(self.baselines)]
            label = f"{phase} {number}/{len(specs)}"
            if not self.force and all(read_run(f).finished_with(spec.config_hash) for f in folders):
                self.display.skip(folders, label)
            else:
                self.display.queue(folders, label)
                pending.append((spec, folders))
        if self.ray is not None:
            return self._on_ray(pending, phase, len(specs))
        for spec, folders in pending:
            self.display.start(folders)
            log = None if self.verbose else _log_file(folders[0])
            code = self._execute(spec, log)
            if log is not None:
                results.redact_file(log)
            stopped = self.guard.received
            failed += _failures_after_worker(folders, code, interrupted=stopped is not None or code == 130)
            self.display.finish(folders, folders[0] / LOG_FILE)
            if stopped is not None or code == 130:
                raise Interrupted(stopped or 2, f"{phase} {spec.name}")
        return failed

    def _on_ray(self, pending: list, phase: str, total: int) -> list[str]:
        folders_of = {spec.name: folders for spec, folders in pending}
        work = [(spec, [str(f.relative_to(self.directory)) for f in folders]) for spec, folders in pending]
        failed: list[str] = []

        def report(spec: RunSpec, code: int, seconds: float) -> None:
            folders = folders_of[spec.name]
            results.redact_file(folders[0] / LOG_FILE)
            failed.extend(_failures_after_worker(folders, code))
            self.display.finish(folders, folders[0] / LOG_FILE)

        def progress(spec: RunSpec, folder: str, text: str) -> None:
            if self.display.rows[self.directory / folder].status in ("queued", "running"):
                results.write_atomic(self.directory / folder / PROGRESS_FILE, text)
                self.display.start(folders_of[spec.name])

        where = self.ray.address or "a local Ray"
        self.console.print(f"{phase}: {len(work)} of {total} runs on Ray ({where})", highlight=False)
        run_on_ray(work, self.directory, self.ray, report, progress)
        return failed

    def _execute(self, spec: RunSpec, log: Path | None) -> int:
        try:
            if not self.inline:
                return _run_in_subprocess(spec, self.directory, self.guard, log)
            with nullcontext() if log is None else output_to(log):
                return self._inline(spec)
        except KeyboardInterrupt:
            return 130

    def _inline(self, spec: RunSpec) -> int:
        key = _inputs_key(spec.config)
        try:
            self.inputs_by_data[key] = execute(spec, self.inputs_by_data.get(key))
        except Exception:  # recorded in the run's status.json; the grid goes on
            return 1
        return 0


def _inputs_key(config: ExperimentConfig) -> tuple:
    return config.seed, config.data.model_dump_json()


def _search(loop: _GridLoop, config: ExperimentConfig) -> tuple[ExperimentConfig, list[str]]:
    """Fair-comparison mode: search each method's learning rate, then return the experiment at those rates."""
    if config.lr_search.strategy == "halving":
        pruned = run_halving(config, loop.directory, loop.run)
        failed = lr_search.failures(loop.directory, config)  # a run paused at a rung has not failed
    else:
        pruned, failed = None, loop.run(lr_search.search_specs(config), "lr search")
    summary = lr_search.pick_rates(loop.directory, config, pruned)
    loop.console.print(f"[bold]learning rates chosen on the validation split ({summary['strategy']})[/bold]")
    for line in lr_search.describe(summary):
        loop.console.print(f"  {line}")
    chosen, unusable = lr_search.with_chosen_rates(config, summary)
    return chosen, failed + unusable


LOCK_FILE = ".peftbench.lock"
PREPARE_LOG = "prepare.log"  # the grid process's own output while it loads the model and data


def _check_writable(directory: Path) -> None:
    """Before any model loads: the experiment folder exists (or can be made) and takes files."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
        raise PeftbenchError(
            f"cannot write to the experiment folder '{directory}' ({problem}); set output_dir to a writable "
            "folder (not a file)"
        ) from None


@contextmanager
def _experiment_lock(directory: Path) -> Iterator[None]:
    """One `peftbench run` per experiment folder: a second one would redo the same runs and disturb the
    timings of the first."""
    lock = FileLock(directory / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise PeftbenchError(
            f"experiment folder '{directory}' is in use by another `peftbench run` (lock {LOCK_FILE}); wait "
            "for it to finish, or give this run another name or output_dir"
        ) from None
    try:
        yield
    finally:
        lock.release()


def run_grid(
    config: ExperimentConfig,
    force: bool = False,
    inline: bool = False,
    console: Console | None = None,
    ray: RayOptions | None = None,
    verbose: bool = False,
) -> tuple[Path, list[str]]:
    """Run every spec of the experiment (here, or as Ray tasks); returns its folder and one line per
    failed run. Each run's output goes to its train.log (verbose: to the terminal, as plain lines)."""
    if inline and ray is not None:
        raise PeftbenchError("--inline and --executor ray exclude each other; pick one")
    if inline and config.launcher.kind != "local":
        raise PeftbenchError(f"--inline runs one process; launcher '{config.launcher.kind}' starts several")
    config = with_resolved_precision(config)  # 'auto' becomes what this machine runs, in every run's hash
    expand(config)  # fails fast on repeated run names
    directory = Path(config.output_dir) / config.name
    _check_writable(directory)
    console = console or Console()
    display = GridDisplay(console, directory, live=console.is_terminal and not verbose)
    with _experiment_lock(directory), SignalGuard() as guard, display:
        loop = _GridLoop(directory, [], console, display, force, inline, verbose, ray=ray, guard=guard)
        try:
            return directory, _run_grid(config, loop)
        except KeyboardInterrupt:
            raise Interrupted(guard.received or 2, "preparation (no run had started)") from None


def _run_grid(config: ExperimentConfig, loop: _GridLoop) -> list[str]:
    directory = loop.directory
    with nullcontext() if loop.verbose else output_to(directory / PREPARE_LOG):  # loading: bars, warnings
        if not loop.inline and loop.ray is None and warm_worker.usable(config):
            warm_worker.start_server()  # its imports overlap with loading the model here
        inputs = prepare_inputs(config.model_copy(update={"methods": expand_methods(config.methods)}))
        preflight(inputs)
    results.redact_file(directory / PREPARE_LOG)
    directory.mkdir(parents=True, exist_ok=True)
    results.write_yaml(directory / "experiment.yaml", config.model_dump())
    loop.baselines = baseline_names(inputs)
    if loop.inline:
        loop.inputs_by_data[_inputs_key(config)] = inputs
    del inputs  # subprocess workers load their own; keep the parent small
    failed: list[str] = []
    if config.lr_search:
        _record_current(directory, [], loop.baselines)  # no final run is current before the rates are chosen
        config, failed = _search(loop, config)
    else:  # a summary that an earlier configuration's search left is not this experiment's
        (directory / lr_search.SUMMARY_FILE).unlink(missing_ok=True)
    specs = expand(config)
    _record_current(directory, specs, loop.baselines)
    return failed + loop.run(specs, "run")


def _record_current(directory: Path, specs: list[RunSpec], baselines: list[str]) -> None:
    """Before any run starts: which folders, with which config hash, make up the experiment now."""
    hashes = {folder: spec.config_hash for spec in specs for folder in spec.folders(baselines)}
    run_folder.write_current(directory, hashes)
