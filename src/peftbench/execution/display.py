"""What a grid shows while it runs. In a terminal: one live table (rich) with a row per run (status,
epoch, step, last loss, samples/s, ETA, and the key metric once finished) under the grid's own ETA.
Elsewhere (CI, `| tee`, a scheduler's log): plain lines, one when a run starts and one when it ends.
Runs report their progress through `progress.json` in their folder (peftbench.results.progress)."""

import contextlib
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from peftbench.results.progress import PROGRESS_FILE, read_progress
from peftbench.results.run_folder import read_run

STYLES = {"queued": "dim", "running": "yellow", "complete": "green", "skipped": "cyan"}


@dataclass
class _Row:
    folder: Path
    name: str
    label: str  # "run 3/8": the phase and the run's place in it
    status: str = "queued"
    started: float | None = None
    seconds: float | None = None
    metric: str = ""
    progress: dict | None = None  # kept when the run ends, so its last epoch, step and loss stay shown


def key_metric(result: dict | None) -> str:
    """'f1_macro 0.7123': the task's learning metric (else its first headline metric) on the test split."""
    from peftbench.tasks import TASKS

    if not result or result.get("task") not in TASKS:
        return ""
    task = TASKS.get(result["task"])
    metrics = (result.get("metrics") or {}).get("test") or {}
    for name in (task.learning_metric, *task.headline_metrics):
        if isinstance(metrics.get(name), int | float):
            return f"{name} {metrics[name]:.4g}"
    return ""


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _cell(value, pattern: str) -> str:
    return "" if value is None else pattern.format(value)


class GridDisplay:
    """Rows are queued by the executor and moved on by start/finish (from the grid's own thread); the live
    table re-reads each running run's progress.json when it redraws (twice a second)."""

    def __init__(self, console: Console, directory: Path, live: bool | None = None, clock=time.monotonic):
        self.console = console
        self.directory = Path(directory)
        self.live = console.is_terminal if live is None else live
        self.clock = clock
        self.rows: dict[Path, _Row] = {}
        self._live: Live | None = None
        self._file = None
        self._begun: float | None = None

    def __enter__(self) -> "GridDisplay":
        # Bound to the stream of now: an inline run sends sys.stdout to its train.log, the display stays.
        self._file = getattr(self.console, "_file", None)
        self.console.file = self.console.file
        return self

    def _show(self) -> None:
        """The live table starts with the first row, after the model and data are loaded."""
        self._begun = self._begun or self.clock()
        if self.live and self._live is None:
            self._live = Live(self, console=self.console, refresh_per_second=2, transient=False)
            self._live.start()

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.console.file = self._file

    def _say(self, row: _Row, text: str) -> None:
        if not self.live:
            self.console.print(
                f"{row.label}: {row.name} {text}", markup=False, highlight=False, soft_wrap=True
            )

    def _row(self, folder: Path, label: str) -> _Row:
        name = (
            folder.relative_to(self.directory).as_posix()
            if folder.is_relative_to(self.directory)
            else folder.name
        )
        row = self.rows.setdefault(folder, _Row(folder, name, label))
        row.label = label
        self._show()
        return row

    def queue(self, folders: list[Path], label: str) -> None:
        for folder in folders:
            self._row(folder, label).status = "queued"
            with contextlib.suppress(OSError):  # an earlier attempt's
                (folder / PROGRESS_FILE).unlink(missing_ok=True)

    def skip(self, folders: list[Path], label: str) -> None:
        for folder in folders:
            row = self._row(folder, label)
            row.status, row.metric = "skipped", key_metric(read_run(folder).result)
            self._say(
                row, "already complete (same config), skipped" + (f" · {row.metric}" if row.metric else "")
            )

    def start(self, folders: list[Path]) -> None:
        for folder in folders:
            row = self.rows[folder]
            if row.status != "queued":
                continue
            row.status, row.started = "running", self.clock()
            self._say(row, f"started · grid {self.eta_text()}")

    def finish(self, folders: list[Path], log: Path | None = None) -> None:
        self.start(folders)  # a run that never reported progress still has its start line
        for folder in folders:
            row = self.rows[folder]
            run = read_run(folder, check_process=False)
            row.status = run.status if run.status in ("complete", "failed", "interrupted") else "failed"
            row.seconds = self.clock() - row.started
            row.metric = key_metric(run.result)
            row.progress = read_progress(folder)
            if row.status == "complete":
                self._say(
                    row,
                    f"complete after {duration(row.seconds)}" + (f" · {row.metric}" if row.metric else ""),
                )
            else:
                where = f" (log: {log})" if log is not None and log.is_file() else ""
                self._say(
                    row, f"{row.status} after {duration(row.seconds)}: {run.error or row.status}{where}"
                )

    def eta_seconds(self) -> float | None:
        """Time left for the grid: each running run's own ETA (else the typical run's remaining time),
        plus the typical run for every queued one. None before any run has a measure of its own."""
        done = [r.seconds for r in list(self.rows.values()) if r.seconds is not None]
        running = [r for r in list(self.rows.values()) if r.status == "running"]
        progress = {r.folder: read_progress(r.folder) or {} for r in running}
        lengths = [p["elapsed_seconds"] + p["eta_seconds"] for p in progress.values() if p.get("eta_seconds")]
        typical = statistics.fmean(done or lengths) if done or lengths else None
        left = 0.0
        for row in running:
            eta = progress[row.folder].get("eta_seconds")
            if eta is None and typical is None:
                return None
            left += eta if eta is not None else max(0.0, typical - (self.clock() - row.started))
        queued = sum(r.status == "queued" for r in list(self.rows.values()))
        if queued and typical is None:
            return None
        return left + queued * (typical or 0.0)

    def eta_text(self) -> str:
        if self.rows and all(r.status not in ("queued", "running") for r in list(self.rows.values())):
            return f"took {duration(self.clock() - self._begun)}"
        seconds = self.eta_seconds()
        return "ETA after the first run" if seconds is None else f"ETA {duration(seconds) or '0 s'}"

    def __rich__(self) -> Table:
        finished = sum(r.status not in ("queued", "running") for r in list(self.rows.values()))
        table = Table(
            title=f"{self.directory.name}: {finished}/{len(self.rows)} runs done · {self.eta_text()}"
        )
        for column in ("run", "status", "epoch", "step", "loss", "samples/s", "time", "ETA", "key metric"):
            table.add_column(
                column,
                no_wrap=column != "run",
                justify="left" if column in ("run", "status", "key metric") else "right",
            )
        for row in list(self.rows.values()):
            table.add_row(
                row.name,
                f"[{STYLES.get(row.status, 'red')}]{row.status}[/]",
                *self._progress_cells(row),
                row.metric,
            )
        return table

    def _progress_cells(self, row: _Row) -> list[str]:
        progress = read_progress(row.folder) if row.status == "running" else row.progress
        running = (
            row.seconds if row.started is None or row.status != "running" else self.clock() - row.started
        )
        if not progress:
            return ["", "", "", "", duration(running), ""]
        if row.status != "running":
            eta = ""
        elif progress.get("phase") == "evaluating":
            eta = "evaluating"
        else:
            eta = duration(progress.get("eta_seconds"))
        return [
            _cell(progress.get("epoch"), "{:.2f}") + _cell(progress.get("epochs"), "/{:g}"),
            f"{progress.get('step')}/{progress.get('max_steps')}",
            _cell(progress.get("loss"), "{:.4f}"),
            _cell(progress.get("samples_per_second"), "{:.1f}"),
            duration(running),
            eta,
        ]
