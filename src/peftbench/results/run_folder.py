"""A run folder's status.json and result file: the one place that writes a run's status and reads a run
back (complete or not, its config hash, its error, its result)."""

import contextlib
import errno
import os
import socket
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peftbench.results import checkpoints
from peftbench.results.results import RESULT_FILE, STATUS_FILE, now, read_json, redact_folder, write_json


def write_status(run_dir: Path, status: str, **details: Any) -> None:
    """status is running, complete, paused (a search run at a rung), failed or interrupted; only complete
    runs have a result.json."""
    write_json(run_dir / STATUS_FILE, {"status": status, "time": now(), **details})


def write_status_if_possible(run_dir: Path, status: str, **details: Any) -> None:
    """write_status, unless the disk is full or the folder unwritable: then the grid process writes it."""
    with contextlib.suppress(OSError):
        write_status(run_dir, status, **details)


def start_run(run_dir: Path, **details: Any) -> None:
    """Drop a previous result.json and record this process (pid, host) as running the run."""
    (run_dir / RESULT_FILE).unlink(missing_ok=True)
    write_status(run_dir, "running", pid=os.getpid(), host=socket.gethostname(), **details)


class Paused(Exception):
    """Raised inside `recording` by a run that stopped at a planned step with a checkpoint: its status
    becomes 'paused' (not complete: `peftbench run` goes on from the checkpoint, same config hash)."""

    def __init__(self, step: int) -> None:
        super().__init__(f"paused after step {step}")
        self.step = step


@contextlib.contextmanager
def recording(run_dir: Path, config_hash: str | None = None) -> Iterator[Path]:
    """Marks the run running; complete only if the body finished, else failed or interrupted."""
    run_dir.mkdir(parents=True, exist_ok=True)
    keyed = {"config_hash": config_hash}
    previous = read_run(run_dir)
    if previous.status == "complete" or previous.config_hash != config_hash:
        checkpoints.drop_checkpoints(run_dir / "trainer")  # another config's: never resumed from
    start_run(run_dir, **keyed)
    try:
        yield run_dir
    except Paused as pause:
        write_status(run_dir, "paused", step=pause.step, **keyed)
        return
    except KeyboardInterrupt as stop:
        write_status_if_possible(run_dir, "interrupted", signal=str(stop) or "SIGINT", **keyed)
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            error += "; free disk space under output_dir, then `peftbench run` again redoes this run"
        write_status_if_possible(run_dir, "failed", error=error, traceback=traceback.format_exc(), **keyed)
        raise
    redact_folder(run_dir)
    write_status(run_dir, "complete", **keyed)


@dataclass(frozen=True)
class RunRecord:
    """One run folder as read back. status: running, complete, failed or interrupted as written (a
    'running' run whose process is gone reads interrupted), 'missing' without a status.json and
    'unknown' when status.json is damaged."""

    folder: Path
    status: str
    config_hash: str | None = None
    error: str | None = None
    result: dict | None = None  # the result file's object: complete runs whose file is readable only

    @property
    def finished(self) -> bool:
        return self.result is not None

    def finished_with(self, config_hash: str) -> bool:
        """Complete, readable, and run with this config: nothing to redo."""
        return self.finished and self.config_hash == config_hash


def _process_gone(status: dict) -> bool:
    """A 'running' status written on this machine by a process that no longer exists."""
    pid, host = status.get("pid"), status.get("host")
    if not isinstance(pid, int) or (host is not None and host != socket.gethostname()):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def read_run(folder: Path, result_file: str = RESULT_FILE, check_process: bool = True) -> RunRecord:
    """The run in `folder`; with check_process=False a stale 'running' status is read as written (the
    grid process, which saw its worker die, decides what it becomes)."""
    folder = Path(folder)
    if not (folder / STATUS_FILE).is_file():
        return RunRecord(folder, "missing")
    status = read_json(folder / STATUS_FILE) or {}
    state, error = status.get("status", "unknown"), status.get("error")
    if check_process and state == "running" and _process_gone(status):
        state, error = "interrupted", f"process {status['pid']} ended without a status"
    result = read_json(folder / result_file) if state == "complete" else None
    return RunRecord(folder, state, status.get("config_hash"), error, result)


def finished_runs(root: Path) -> list[RunRecord]:
    """Every complete run with a readable result.json under root (a run folder or an experiment folder)."""
    found = (read_run(path.parent) for path in sorted(Path(root).rglob(RESULT_FILE)))
    return [run for run in found if run.finished]


def finished_results(root: Path) -> list[dict]:
    return [run.result for run in finished_runs(root)]


CURRENT_FILE = "current_runs.json"  # in the experiment folder: its runs as `peftbench run` last expanded them


def write_current(directory: Path, hashes: dict[str, str]) -> None:
    """Record the experiment's current runs (folder relative to `directory` -> config hash), so that
    `compare` and `report` leave out complete runs that an earlier configuration left behind."""
    write_json(directory / CURRENT_FILE, {"runs": hashes})


@dataclass(frozen=True)
class Selection:
    """The complete runs under a folder, split by whether the current experiment has them."""

    current: list[RunRecord]
    earlier: list[RunRecord]  # another config hash, or a folder the current experiment no longer has
    dropped: list[Path]  # the folders of `earlier` runs that the current experiment no longer has
    unrecorded: list[Path]  # experiment folders without CURRENT_FILE (older peftbench): all runs kept


def _experiment_of(folder: Path, seen: dict[Path, dict | None]) -> tuple[str, dict[str, str]] | None:
    """The run's folder relative to the nearest folder above it holding CURRENT_FILE, and that file's
    runs; None when no folder above it has one."""
    folder = folder.absolute()
    for parent in folder.parents:
        if parent not in seen:
            seen[parent] = read_json(parent / CURRENT_FILE)
        if seen[parent] is not None:
            return folder.relative_to(parent).as_posix(), seen[parent].get("runs") or {}
    return None


def select_current(root: Path) -> Selection:
    """Complete runs under root, kept when their config hash is the one the current experiment gives
    their folder (all of them in a folder that `peftbench run` never recorded)."""
    selection = Selection([], [], [], [])
    seen: dict[Path, dict | None] = {}
    for run in finished_runs(root):
        found = _experiment_of(run.folder, seen)
        if found is None:
            selection.current.append(run)
            if run.folder.parent not in selection.unrecorded:
                selection.unrecorded.append(run.folder.parent)
        elif found[1].get(found[0]) == run.config_hash:
            selection.current.append(run)
        else:
            selection.earlier.append(run)
            if found[0] not in found[1]:
                selection.dropped.append(run.folder)
    return selection
