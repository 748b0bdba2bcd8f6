"""Efficiency measurements on objects whose true sizes, memory and durations are known."""

import time

import pytest
import torch
from torch import nn

from peftbench.measure import PeakMemory, count_parameters, safetensors_bytes, weights_bytes
from peftbench.timing import EpochTimer


def test_count_parameters_counts_frozen_and_trainable():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # 3*4+4 = 16 and 4*2+2 = 10 parameters
    model[0].requires_grad_(False)
    assert count_parameters(model) == {
        "total_params": 26,
        "trainable_params": 10,
        "trainable_percent": pytest.approx(100 * 10 / 26),
    }
    assert count_parameters(nn.Module()) == {
        "total_params": 0,
        "trainable_params": 0,
        "trainable_percent": 0.0,
    }


def test_weights_bytes_uses_each_parameters_dtype():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2).to(torch.bfloat16))
    assert weights_bytes(model) == 16 * 4 + 10 * 2


def test_safetensors_bytes_sums_weight_files_at_any_depth(tmp_path):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "a.safetensors").write_bytes(b"x" * 100)
    (tmp_path / "adapter" / "b.safetensors").write_bytes(b"y" * 23)
    (tmp_path / "adapter" / "adapter_config.json").write_bytes(b"z" * 7)  # not weights
    (tmp_path / "empty").mkdir()
    assert safetensors_bytes(tmp_path) == 123
    assert safetensors_bytes(tmp_path / "adapter") == 23


def test_peak_memory_catches_a_peak_that_is_gone_by_the_end():
    size = 300 * 2**20
    with PeakMemory(interval=0.01) as memory:
        block = bytearray(size)  # zero-filled: the pages are really touched
        time.sleep(0.3)
        del block  # freed before __exit__, so only the sampling thread can have seen it
        time.sleep(0.05)
    report = memory.report()
    assert report["peak_rss_above_start_bytes"] > 0.8 * size
    absolute, start = report["process_peak_rss_bytes"], report["baseline_rss_bytes"]
    assert absolute - start == report["peak_rss_above_start_bytes"]
    assert report["baseline_rss_bytes"] > 0
    if torch.cuda.is_available():
        assert report["memory_method"].endswith("at each phase change")
    else:
        assert report["memory_method"].startswith("process RSS sampled every 10 ms, split by phase")
        assert "CUDA" not in report["memory_method"]
        assert report["cuda_peak_allocated_bytes"] is None and report["cuda_peak_reserved_bytes"] is None
    assert not memory._thread.is_alive()


def test_epoch_timer_measures_each_epoch():
    timer = EpochTimer()
    for pause in (0.05, 0.15):
        timer.on_epoch_begin(None, None, None)
        time.sleep(pause)
        timer.on_epoch_end(None, None, None)
    first, second = timer.epoch_seconds
    assert 0.05 <= first < 0.15 <= second < 0.5
