"""Resume inside a run: the Trainer saves a checkpoint every `training.checkpoint_every` steps (only the
last complete one is kept, see keep_last); an interrupted run continues from it with the Trainer's own
resume_from_checkpoint.

Resuming is exact on a CPU: the Trainer restores the weights, optimizer, scheduler and RNG states
(python, numpy, torch) and skips the batches of the epoch already trained (its sampler is seeded by
data_seed + epoch). Two things it misses are handled here. A checkpoint due at an epoch's last step was
taken before that epoch's evaluation, which a run resumed from it never did (it starts the next epoch): its
validation metrics were missing, and the evaluation's draws from the torch RNG (every DataLoader iteration
takes a base seed) shifted all later dropout masks. Such a checkpoint now waits for the epoch's end. And
the loss summed since the last log goes into the checkpoint, so the first log after a resume averages the
same steps as an uninterrupted run.

Timing: train_seconds = the training seconds up to the checkpoint (recorded in it, the partial epoch
included) + the training seconds of the resumed segment. The work done after the checkpoint and lost with
the stop is not counted; it is redone in the resumed segment and counted there, once."""

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

CLOCK_FILE = "peftbench_clock.json"  # written last: a checkpoint without it was cut short by a stop


def _step(folder: Path) -> int:
    suffix = folder.name.rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else -1


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint; folders a stop cut short while saving are removed."""
    found = sorted(output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"), key=_step) if output_dir.is_dir() else []
    for folder in found:
        if not (folder / CLOCK_FILE).is_file():
            shutil.rmtree(folder, ignore_errors=True)
    complete = [folder for folder in found if (folder / CLOCK_FILE).is_file()]
    return complete[-1] if complete else None


def keep_last(output_dir: Path, best: str | None = None) -> None:
    """Leaves only the newest complete checkpoint (and `best`, which load_best_model_at_end reloads).
    Called once a new checkpoint is complete, never before: the Trainer's own save_total_limit deletes the
    previous checkpoint before this one is complete, and a stop in between left none to resume from."""
    newest = last_checkpoint(output_dir)
    kept = {newest.name if newest else None, Path(best).name if best else None}
    for folder in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if newest else ():
        if folder.name not in kept:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def kept_on_stop(output_dir: Path, trainer) -> Iterator[None]:
    """A stop (KeyboardInterrupt) during training leaves only the checkpoint the run will resume from."""
    try:
        yield
    except KeyboardInterrupt:
        keep_last(output_dir, trainer.state.best_model_checkpoint)
        raise


def saved_state(checkpoint: Path | None) -> dict:
    """What ResumeState wrote into the checkpoint: train_seconds, loss_since_log, last_logged_step."""
    clock = checkpoint / CLOCK_FILE if checkpoint else None
    return json.loads(clock.read_text()) if clock and clock.is_file() else {}


def drop_checkpoints(output_dir: Path) -> None:
    for folder in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        shutil.rmtree(folder, ignore_errors=True)


def pause_step(max_steps: int, warmup_steps: int, num: int, den: int) -> int:
    """The step PauseAt(num, den) stops a run of max_steps steps at: num times the first rung's step, which
    is max_steps // den, or the first step after the warm-up when that is later. Inside a linear warm-up
    every candidate rate is scaled down alike (to 0 at the first step), so their validation scores there
    tie or differ by noise and say nothing about the rate. With num = eta^k and den = eta^(rungs-1) these
    are exactly the rung steps of Optuna's SuccessiveHalvingPruner(min_resource=pause_step(.., 1, den))."""
    return num * max(max_steps // den, warmup_steps + 1)


class PauseAt(TrainerCallback):
    """Stops training at pause_step(...) (with the Trainer's warm-up steps for this run) with a checkpoint
    there, to be resumed later: a rung of the halving learning-rate search. A step at or past the run's end
    does not pause it. The learning-rate schedule is the full run's, so the resumed run goes on exactly as if
    it had never stopped."""

    def __init__(self, num: int, den: int) -> None:
        self.num, self.den, self.step, self.paused = num, den, None, False

    def on_train_begin(self, args, state, control, **kwargs):
        warmup = args.get_warmup_steps(state.max_steps)
        self.step = pause_step(state.max_steps, warmup, self.num, self.den)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step < state.max_steps:
            control.should_save = control.should_training_stop = self.paused = True


def drop_unless_paused(output_dir: Path, trainer) -> None:
    """After training: checkpoints go, unless a PauseAt stopped the run to resume it later."""
    if not any(isinstance(c, PauseAt) and c.paused for c in trainer.callback_handler.callbacks):
        drop_checkpoints(output_dir)


class EpochSeededLengthSampler(LengthGroupedSampler):
    """group_by_length's sampler, its order drawn from seed + epoch as the Trainer's random sampler's is. The
    Trainer's draws from the global torch RNG when an epoch starts; a run resumed mid-epoch rebuilds the
    order when the RNG is elsewhere, and trained on other batches than the run it continues."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator.manual_seed(self.seed + self.epoch)
        return super().__iter__()


class ExactResume:
    """A Trainer mixin: group_by_length batches in an order a resumed run can rebuild."""

    def _get_train_sampler(self, train_dataset=None):
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return EpochSeededLengthSampler(sampler.batch_size, sampler.lengths, seed)
        return sampler


class ResumeState(TrainerCallback):
    """The checkpoint a run resumes from (None: a fresh start). Writes into each new checkpoint, last, what
    the Trainer does not keep: the training seconds up to it (`elapsed`: this segment's so far, the epoch
    under way included) and the loss summed since the last log; puts that loss back on resuming."""

    def __init__(self, trainer, elapsed: Callable[[], float], checkpoint: Path | None) -> None:
        self.trainer, self.elapsed, self.checkpoint = trainer, elapsed, checkpoint
        self.saved = saved_state(checkpoint)
        self.before = self.saved.get("train_seconds", 0.0)
        self.save_at_epoch_end = False

    @property
    def path(self) -> str | None:
        return str(self.checkpoint) if self.checkpoint else None

    def train_seconds(self, segment: float, wall: float) -> float:
        """Seconds before the checkpoint + this segment's. A fresh run without epoch times (none ran)
        falls back to the wall time; a run resumed at its last step trains no epoch and adds 0."""
        return self.before + (segment if self.checkpoint or segment else wall)

    def record(self, segment: float) -> dict | None:
        if self.checkpoint is None:
            return None
        return {
            "checkpoint": self.checkpoint.name,
            "train_seconds_before": self.before,
            "train_seconds_resumed": segment,
        }

    def on_step_end(self, args, state, control, **kwargs):
        """A checkpoint due at an epoch's last step waits for the epoch's end, after its evaluation: a
        run resumed from it starts the next epoch and would never evaluate this one."""
        if control.should_save and float(state.epoch).is_integer():
            control.should_save, self.save_at_epoch_end = False, True

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.save_at_epoch_end:
            control.should_save, self.save_at_epoch_end = True, False

    def on_train_begin(self, args, state, control, **kwargs):
        if "loss_since_log" in self.saved and args.world_size == 1:  # one rank's sum: no other to restore
            self.trainer._tr_loss.fill_(self.saved["loss_since_log"])
            self.trainer._globalstep_last_logged = self.saved["last_logged_step"]

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if folder.is_dir() and state.is_world_process_zero:
            saved = {
                "train_seconds": self.before + self.elapsed(),
                "loss_since_log": float(self.trainer._tr_loss),
                "last_logged_step": self.trainer._globalstep_last_logged,
            }
            (folder / f"{CLOCK_FILE}.tmp").write_text(json.dumps(saved))
            os.replace(folder / f"{CLOCK_FILE}.tmp", folder / CLOCK_FILE)
            keep_last(Path(args.output_dir), state.best_model_checkpoint)


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
