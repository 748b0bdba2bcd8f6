"""Precision resolution: 'auto' picks what the machine runs fast; fp16 without a GPU is refused."""

import pytest
import torch

from peftbench import training
from peftbench.config import build_config
from peftbench.errors import PeftbenchError


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_uses_bf16_only_on_cpus_with_native_bf16(cpu_only, monkeypatch, native, expected):
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: native)
    assert training.resolve_precision("auto") == expected
    assert training.resolve_precision("fp32") == "fp32"


def test_auto_on_a_gpu_prefers_bf16_then_fp16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for supported, expected in ((True, "bf16"), (False, "fp16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        assert training.resolve_precision("auto") == expected


def test_fp16_without_a_gpu_is_a_clear_error(cpu_only):
    with pytest.raises(PeftbenchError, match="fp16 needs a CUDA GPU"):
        training.resolve_precision("fp16")


def test_resolved_config_carries_the_concrete_precision(cpu_only, monkeypatch, experiment):
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: True)
    config = build_config(experiment)
    assert config.training.precision == "auto"
    assert training.with_resolved_precision(config).training.precision == "bf16"
