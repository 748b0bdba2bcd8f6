"""Where a grid's wall time went: training, the evaluation the config asks for, and the rest (overhead).

The runs record their own seconds (result.json, search.json); what they do not account for of the wall
time is overhead: start-up and imports, loading the model and data, worker processes, saving, the report.
Runs that ran in parallel (Ray) are set against worker-seconds: the wall time times the most runs that
were running at once, so the parts still add up to 100%."""

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import psutil

from peftbench.execution.display import duration
from peftbench.grid.grid import SEARCH_FOLDER
from peftbench.grid.lr_search import SEARCH_FILE
from peftbench.results import results

SPLIT_FILE = "time_split.json"
HOW = (
    "wall: from `since` (the process's start for `peftbench run`/`demo`, imports included; for later demo "
    "experiments, the end of the one before) to the end, the report build included. training: each run's "
    "Trainer loop as it timed it (efficiency.train_wall_seconds_including_eval: the epochs and the "
    "per-epoch validation; search runs: train_seconds). evaluation: test metrics and generation "
    "(seconds.evaluation, baselines included), forgetting.seconds, interpolation_info.seconds. other: "
    "wall x workers - training - evaluation, never below 0 (model and data loading, process start-up, "
    "saving, the report). workers: 1 when runs run one after another; on Ray, the most runs that were "
    "running at once. Only runs that finished after `since` count; a failed run's time is other"
)


@dataclass(frozen=True)
class RunSeconds:
    """One run's recorded seconds, and when it ran (epoch seconds, for the parallel case)."""

    training: float
    evaluation: float
    start: float
    end: float


def process_started() -> float:
    """When this process started (epoch seconds), so the wall time includes start-up and imports."""
    return psutil.Process().create_time()


def _number(value) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def from_result(result: dict, end: float) -> RunSeconds:
    """A run's seconds from its result.json, written at `end`."""
    efficiency = result.get("efficiency") or {}
    training = efficiency.get("train_wall_seconds_including_eval", efficiency.get("train_seconds"))
    seconds = result.get("seconds") or {}
    evaluation = sum(
        _number(part.get("seconds") if isinstance(part, dict) else None)
        for part in (result.get("forgetting"), result.get("interpolation_info"))
    )
    took = _number(seconds.get("run")) or _number(training) + _number(seconds.get("evaluation"))
    return RunSeconds(_number(training), _number(seconds.get("evaluation")) + evaluation, end - took, end)


def from_search(record: dict, end: float) -> RunSeconds:
    training = _number(record.get("train_seconds"))
    return RunSeconds(training, 0.0, end - training, end)


def collect(directory: Path, since: float) -> list[RunSeconds]:
    """The seconds of every run under the experiment folder whose record was written after `since`."""
    found = []
    sources = [(results.RESULT_FILE, from_result, "*"), (SEARCH_FILE, from_search, f"{SEARCH_FOLDER}/*")]
    for name, reader, pattern in sources:
        for path in sorted(directory.glob(f"{pattern}/{name}")):
            written = path.stat().st_mtime
            record = results.read_json(path)
            if written >= since and isinstance(record, dict):
                found.append(reader(record, written))
    return found


def most_at_once(runs: list[RunSeconds]) -> int:
    """The most runs whose [start, end) intervals overlap at one moment (at least 1)."""
    events = sorted([(r.start, 1) for r in runs] + [(r.end, -1) for r in runs], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return max(peak, 1)


@dataclass(frozen=True)
class WallSplit:
    wall_seconds: float
    workers: int
    training_seconds: float
    evaluation_seconds: float
    runs: int

    @property
    def total_seconds(self) -> float:
        """Worker-seconds (wall x workers); the runs' own seconds when they exceed it (clock skew)."""
        return max(self.wall_seconds * self.workers, self.training_seconds + self.evaluation_seconds)

    @property
    def other_seconds(self) -> float:
        return max(0.0, self.total_seconds - self.training_seconds - self.evaluation_seconds)

    def shares(self) -> dict[str, float]:
        total = self.total_seconds or 1.0
        return {
            "training": self.training_seconds / total,
            "evaluation": self.evaluation_seconds / total,
            "other": self.other_seconds / total,
        }

    def line(self) -> str:
        shares = " · ".join(f"{name} {share:.0%}" for name, share in self.shares().items())
        workers = f" x {self.workers} workers" if self.workers > 1 else ""
        return f"time: {shares} of {duration(self.wall_seconds) or '0 s'}{workers}"

    def to_json(self) -> dict:
        return {**asdict(self), "other_seconds": self.other_seconds, "shares": self.shares(), "how": HOW}


def split(directory: Path, since: float, parallel: bool = False, end: float | None = None) -> WallSplit:
    """The split of the wall time from `since` to `end` (now) over the runs written in between."""
    end = time.time() if end is None else end
    runs = collect(directory, since)
    return WallSplit(
        wall_seconds=max(0.0, end - since),
        workers=most_at_once(runs) if parallel else 1,
        training_seconds=sum(r.training for r in runs),
        evaluation_seconds=sum(r.evaluation for r in runs),
        runs=len(runs),
    )


def record(directory: Path, since: float, parallel: bool = False) -> WallSplit:
    """Compute the split and write it to `<experiment>/time_split.json` (atomically)."""
    found = split(directory, since, parallel)
    started = datetime.fromtimestamp(since).astimezone().isoformat(timespec="seconds")
    results.write_atomic(
        directory / SPLIT_FILE, json.dumps({**found.to_json(), "since": started}, indent=2) + "\n"
    )
    return found
