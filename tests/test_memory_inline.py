"""Runs that share one process (--inline, demo --quick) are measured from their own start."""

from transformers import TrainerCallback

from peftbench.inputs import run_inputs
from peftbench.inputs.experiment import build_config
from peftbench.measure.measure import PeakMemory, release_freed_memory
from peftbench.report import compare
from peftbench.run import runner
from peftbench.training import training

MIB = 2**20
LEFT = 300 * MIB


class KeepsMemory(TrainerCallback):
    """A first run that allocates a lot during training and leaves it resident in the process."""

    kept: list = []

    def on_train_begin(self, args, state, control, **kwargs):
        if not self.kept:
            self.kept.append(bytearray(LEFT))  # zero-filled: really resident


def test_a_later_run_in_the_same_process_does_not_inherit_what_the_first_left(experiment, monkeypatch):
    real_make_trainer = training.make_trainer

    def make_trainer(*args, **kwargs):
        trainer = real_make_trainer(*args, **kwargs)
        trainer.add_callback(KeepsMemory())
        return trainer

    monkeypatch.setattr(training, "make_trainer", make_trainer)
    monkeypatch.setattr(KeepsMemory, "kept", [])
    methods = [{"method": "head", "name": "first"}, {"method": "head", "name": "second"}]
    config = build_config({**experiment, "methods": methods, "baselines": False, "forgetting": False})
    inputs = run_inputs.prepare_inputs(config)  # one process, one RunInputs: as --inline runs them
    for entry in config.methods:
        runner.run_method(inputs, entry)
    table, columns, _ = compare.rows(inputs.directory)
    memory = {row["run"]: row["peak_rss_above_start_mb"] for row in table}
    assert memory["first"] >= 0.9 * LEFT / MIB  # its own allocation is counted
    assert memory["second"] < 0.3 * LEFT / MIB, memory  # not the first run's leftovers
    assert "peak_rss_above_start_mb" in columns


def test_memory_freed_but_kept_by_the_allocator_is_returned_before_the_start():
    """Many small blocks come from the heap: freed, glibc keeps them resident until trimmed; the next
    run's start is measured after the trim, so its own allocations show in its figure."""
    blocks = [bytearray(64 * 1024) for _ in range(3000)]  # ~190 MiB below the mmap threshold
    keep = blocks[::50]  # a few live blocks pin the heap, so free() alone cannot shrink it
    del blocks
    with PeakMemory(interval=0.005) as memory:
        again = [bytearray(64 * 1024) for _ in range(3000)]
        del again
    release_freed_memory()
    assert memory.peak_above_start > 100 * MIB, memory.report()
    assert len(keep) == 60
