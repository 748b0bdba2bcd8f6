"""probe-batch: the search, out-of-memory recovery (simulated: CI has no GPU) and the CPU budget."""

import copy

import pytest
import torch
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.config.config import MethodConfig
from peftbench.efficiency import probe
from peftbench.efficiency.estimate import meta_model
from peftbench.models.models import ModelSource
from peftbench.tasks import TASKS

runner = CliRunner()


@pytest.mark.parametrize("threshold", [0, 1, 2, 3, 7, 64, 100, 1000])
def test_largest_fitting_finds_the_threshold_within_the_limit(threshold):
    tried = []

    def fits(batch):
        tried.append(batch)
        return batch <= threshold

    assert probe.largest_fitting(fits, limit=512) == min(threshold, 512)
    assert len(tried) <= 2 * 10 + 1  # doubling then bisection: logarithmic, not a scan


def test_out_of_memory_is_recovered_and_the_probe_goes_on(tiny_bert, monkeypatch):
    """A CUDA probe whose steps raise OutOfMemoryError above batch 5, as a GPU would."""
    for name in ("empty_cache", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, lambda: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 1234)

    def steps(model, inputs, precision, steps=2, optim="adamw_torch"):
        if len(inputs["input_ids"]) > 5:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(probe, "_training_steps", steps)
    task = TASKS.get("classification")
    model = meta_model(ModelSource(str(tiny_bert)), task)
    peaks = {}
    fits = probe.cuda_fits(model, task, 16, "fp32", peaks, device="meta")
    assert probe.largest_fitting(fits, limit=64) == 5 and peaks[5] == 1234


def test_cpu_budget_gives_lora_a_larger_batch_than_full(tiny_bert):
    task = TASKS.get("classification")
    base = meta_model(ModelSource(str(tiny_bert)), task)
    found = {
        entry.method: probe.probe_method(
            lambda: copy.deepcopy(base), task, entry, str(tiny_bert), 32, 4096, 2 * 2**20, "fp32"
        )
        for entry in (MethodConfig(method="full"), MethodConfig(method="lora", r=2, target_modules=["query"]))
    }
    assert 0 < found["full"].batch_size < found["lora"].batch_size
    assert all(p.memory_bytes <= 2 * 2**20 and "estimated" in p.how for p in found.values())


def test_probe_batch_command_prints_the_table(tiny_bert):
    result = runner.invoke(
        app,
        [
            "probe-batch",
            "--model",
            str(tiny_bert),
            "--method",
            "full",
            "--method",
            "lora:r=2:target_modules=[query]",
            "--seq-len",
            "32",
            "--memory-budget",
            "0.002",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "largest batch" in result.output and "estimated (meta device)" in result.output
