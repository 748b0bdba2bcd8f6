"""A run's progress while it trains: a Trainer callback writes `progress.json` in the run folder (at most
every `every` seconds, and at the end of training), and the grid process reads it to draw its display.
A file rather than a pipe, so the same display works for subprocess workers, inline runs and Ray tasks."""

import contextlib
import time
from pathlib import Path

from transformers import TrainerCallback

from peftbench.results.results import read_json, write_json

PROGRESS_FILE = "progress.json"
LOG_FILE = "train.log"  # the run's Trainer logs, progress bars and library warnings (without --verbose)


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class ProgressFile(TrainerCallback):
    """Writes {phase, epoch, epochs, step, max_steps, loss, samples_per_second, eta_seconds} to
    `<run folder>/progress.json`; phase is 'training', then 'evaluating' once training ends."""

    def __init__(self, run_dir: Path, every: float = 0.5, clock=time.monotonic):
        self.path = Path(run_dir) / PROGRESS_FILE
        self.every = every
        self.clock = clock
        self.loss: float | None = None
        self._begin = 0.0
        self._first_step = 0
        self._written = -float("inf")

    def on_train_begin(self, args, state, control, **kwargs):
        self._begin = self.clock()
        self._first_step = state.global_step  # a resumed run starts past zero
        self._write(args, state, "training", force=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = _number((logs or {}).get("loss"))
        self.loss = loss if loss is not None else self.loss
        self._write(args, state, "training")

    def on_step_end(self, args, state, control, **kwargs):
        self._write(args, state, "training")

    def on_train_end(self, args, state, control, **kwargs):
        self._write(args, state, "evaluating", force=True)

    def _write(self, args, state, phase: str, force: bool = False) -> None:
        now = self.clock()
        if not state.is_world_process_zero or (not force and now - self._written < self.every):
            return
        self._written = now
        elapsed = now - self._begin
        done = state.global_step - self._first_step
        rate = done / elapsed if done > 0 and elapsed > 0 else None
        samples = args.train_batch_size * args.gradient_accumulation_steps * args.world_size
        left = max(0, state.max_steps - state.global_step)
        payload = {
            "phase": phase,
            "epoch": state.epoch,
            "epochs": args.num_train_epochs,
            "step": state.global_step,
            "max_steps": state.max_steps,
            "loss": self.loss,
            "samples_per_second": rate * samples if rate else None,
            "eta_seconds": left / rate if rate else None,
            "elapsed_seconds": elapsed,
        }
        with contextlib.suppress(OSError):  # the display misses one update; training goes on
            write_json(self.path, payload)


def read_progress(run_dir: Path) -> dict | None:
    """The run's last progress, or None before it trains (baselines never do)."""
    return read_json(Path(run_dir) / PROGRESS_FILE)
