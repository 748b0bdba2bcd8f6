"""Training time per epoch, as wall time and as this process's CPU time, with what other processes took
from the machine meanwhile: on a shared machine a slow epoch can be someone else's doing, and the
result says so (`timing.contended`) instead of passing the wall time off as the method's cost."""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import torch
from transformers import TrainerCallback

QUARTER_CORE = 0.25  # other processes using less than this on average count as noise


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has spent working (all cores, since boot)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def process_cpu_seconds() -> float:
    return time.process_time()


@dataclass(frozen=True)
class Span:
    wall: float
    cpu: float
    busy: float

    @classmethod
    def now(cls, clock: Callable[[], float] = time.perf_counter) -> "Span":
        return cls(clock(), process_cpu_seconds(), machine_busy_seconds())


@dataclass(frozen=True)
class EpochTime:
    wall_seconds: float
    cpu_seconds: float  # this process, all its threads
    others_cpu_seconds: float  # every other process on the machine

    @classmethod
    def between(cls, start: Span, end: Span) -> "EpochTime":
        cpu = end.cpu - start.cpu
        return cls(end.wall - start.wall, cpu, max(0.0, end.busy - start.busy - cpu))


def is_contended(epochs: list[EpochTime], cores: int, threads: int) -> bool:
    """Other processes used, on average, more cores than this run's threads left free (and at least a
    quarter of one): then some of the wall time was spent waiting for a core, not computing."""
    wall = sum(e.wall_seconds for e in epochs)
    if wall <= 0:
        return False
    others = sum(e.others_cpu_seconds for e in epochs) / wall
    return others > max(QUARTER_CORE, cores - threads)


def timing_report(epochs: list[EpochTime], cores: int | None = None, threads: int | None = None) -> dict:
    cores = cores or available_cores()
    threads = threads or torch.get_num_threads()
    wall = sum(e.wall_seconds for e in epochs)
    cpu = sum(e.cpu_seconds for e in epochs)
    others = sum(e.others_cpu_seconds for e in epochs)
    return {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "others_cpu_seconds": others,
        "cpu_per_wall": cpu / wall if wall else None,
        "cores": cores,
        "torch_threads": threads,
        "contended": is_contended(epochs, cores, threads),
        "epochs": [vars(e) for e in epochs],
        "method": "per training epoch (evaluation excluded): wall = perf_counter, cpu = this process's CPU "
        "time (all threads), others = the machine's busy CPU time minus this process's. contended: other "
        "processes used on average more cores than the run's torch threads left free "
        f"(at least {QUARTER_CORE})",
    }


def cuda_sync() -> None:
    """Wait for queued CUDA work, so a clock read after it includes that work."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class EpochTimer(TrainerCallback):
    """Training time per epoch, measured between on_epoch_begin and on_epoch_end, so evaluation
    (which the Trainer runs after on_epoch_end) is excluded."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.epochs: list[EpochTime] = []
        self.clock = clock
        self._start: Span | None = None

    @property
    def epoch_seconds(self) -> list[float]:
        return [e.wall_seconds for e in self.epochs]

    def elapsed(self) -> float:
        """Wall seconds of the epochs so far, the one under way included (a checkpoint mid-epoch)."""
        running = self.clock() - self._start.wall if self._start is not None else 0.0
        return sum(self.epoch_seconds) + running

    def on_epoch_begin(self, args, state, control, **kwargs):
        cuda_sync()
        self._start = Span.now(self.clock)

    def on_epoch_end(self, args, state, control, **kwargs):
        cuda_sync()
        self.epochs.append(EpochTime.between(self._start, Span.now(self.clock)))
        self._start = None

    def report(self) -> dict:
        return timing_report(self.epochs)
