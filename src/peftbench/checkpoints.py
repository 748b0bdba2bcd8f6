"""Resume inside a run: the Trainer saves a checkpoint every `training.checkpoint_every` steps (only the
last is kept); an interrupted run continues from it with the Trainer's own resume_from_checkpoint.

Timing stays honest: each checkpoint records the training seconds spent up to it, and the resumed run
reports those plus its own. Work done after the last checkpoint is redone, and counted once."""

import json
import shutil
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

CLOCK_FILE = "peftbench_clock.json"


def last_checkpoint(output_dir: Path) -> Path | None:
    found = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    return Path(found) if found else None


def seconds_before(checkpoint: Path | None) -> float:
    clock = checkpoint / CLOCK_FILE if checkpoint else None
    return json.loads(clock.read_text())["train_seconds"] if clock and clock.is_file() else 0.0


def drop_checkpoints(output_dir: Path) -> None:
    for folder in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        shutil.rmtree(folder, ignore_errors=True)


class CheckpointClock(TrainerCallback):
    """Training seconds (epochs without evaluation, as EpochTimer measures) written into each checkpoint."""

    def __init__(self, before: float) -> None:
        self.closed = before
        self._start: float | None = None

    def elapsed(self) -> float:
        return self.closed + (time.perf_counter() - self._start if self._start is not None else 0.0)

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.closed = self.elapsed()
        self._start = None

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if folder.is_dir() and state.is_world_process_zero:
            (folder / CLOCK_FILE).write_text(json.dumps({"train_seconds": self.elapsed()}))


class SaveEveryMinutes(TrainerCallback):
    """Asks the Trainer for a checkpoint once `minutes` passed since the last one (or the start)."""

    def __init__(self, minutes: float, clock=time.monotonic) -> None:
        self.seconds, self.clock = minutes * 60, clock
        self.last = clock()

    def on_step_end(self, args, state, control, **kwargs):
        if self.clock() - self.last >= self.seconds:
            control.should_save = True

    def on_save(self, args, state, control, **kwargs):
        self.last = self.clock()
