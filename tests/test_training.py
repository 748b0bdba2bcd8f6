"""Precision resolution: 'auto' picks what the machine runs fast; fp16 without a GPU is refused."""

import json

import pytest
import torch

from peftbench.errors import PeftbenchError
from peftbench.inputs.experiment import build_config
from peftbench.training import training


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


def _workspace(experiment, **settings):
    from peftbench.inputs import run_inputs

    experiment["training"] |= settings
    return run_inputs.prepare_inputs(training.with_resolved_precision(build_config(experiment)))


def test_head_has_its_own_rate_and_keeps_the_trainers_weight_decay(tiny_bert, tmp_path):
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

    from peftbench.config.config import MethodConfig, TrainingConfig
    from peftbench.methods import head_parameters_in, prepare_model
    from peftbench.tasks import TASKS, method_context

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    context = method_context(TASKS.get("classification"), model, str(tiny_bert), 4)
    model = prepare_model(model, MethodConfig(method="lora", r=2), context)
    head = head_parameters_in(model, context.head_modules)
    config = TrainingConfig(learning_rate=1e-3, head_learning_rate=5e-2, weight_decay=0.1, precision="fp32")
    parts = training.TrainerParts(DataCollatorWithPadding(None), ("input_ids", "label"))
    trainer = training.make_trainer(model, None, config, tmp_path, 0, parts, head_parameters=head)
    optimizer = trainer.create_optimizer()
    head_ids = {id(p) for p in head}
    assert head_ids  # classifier and pooler copies
    for group in optimizer.param_groups:
        in_head = {id(p) in head_ids for p in group["params"]}
        assert len(in_head) <= 1, "a group mixes head and body"
        if in_head == {True}:
            assert group["lr"] == 5e-2 and group["part"] == "head"
        elif in_head == {False}:
            assert group["lr"] == 1e-3 and group["part"] == "body"
    decay = set(trainer.get_decay_parameter_names(model))
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            assert group["weight_decay"] == (0.1 if names[id(p)] in decay else 0.0)
    grouped = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    assert training.effective_learning_rates(optimizer) == {"body": 1e-3, "head": 5e-2}


def test_result_records_the_effective_rates(experiment):
    from peftbench.run import runner

    experiment["methods"] = [{"method": "lora", "r": 2, "head_learning_rate": 2e-2}, {"method": "head"}]
    workspace = _workspace(experiment, head_learning_rate=1e-2)
    lora, head = workspace.config.methods
    lora_result = json.loads((runner.run_method(workspace, lora) / "result.json").read_text())
    assert lora_result["learning_rates"] == {"body": 1e-3, "head": 2e-2}
    head_result = json.loads((runner.run_method(workspace, head) / "result.json").read_text())
    assert head_result["learning_rates"] == {"body": None, "head": 1e-2}


def test_adalora_reallocates_rank_during_training(experiment):
    from peftbench.config.config import MethodConfig
    from peftbench.run import runner

    workspace = _workspace(experiment, epochs=2)
    entry = MethodConfig(
        method="adalora", init_r=4, target_r=1, tinit=2, tfinal=2, deltaT=1, target_modules=["query", "value"]
    )
    model, _ = runner._prepare_and_train(workspace, entry, workspace.directory / "adalora")
    config = model.peft_config["default"]
    assert config.total_step >= 6  # the schedule ran past its final allocation step
    assert config.rank_pattern, "update_and_allocate never finalised a rank pattern"
    kept = [sum(mask) for mask in config.rank_pattern.values()]
    assert sum(kept) < 4 * len(kept)
    nonzero = [int((p != 0).sum()) for n, p in model.named_parameters() if "lora_E" in n]
    assert sum(nonzero) == sum(kept)


@pytest.mark.parametrize(
    ("rows", "batch", "epochs", "configured", "expected"),
    [
        (32, 4, 1, None, 1),  # 8 steps: every step, so a short run still draws a curve
        (160, 8, 1, None, 1),  # 20 steps
        (540, 8, 3, None, 10),  # 204 steps: about 20 points, never more than 10 steps apart
        (400, 8, 2, None, 5),  # 100 steps
        (32, 4, 1, 50, 8),  # configured, but at least once per epoch
        (540, 8, 3, 3, 3),  # configured
    ],
)
def test_logging_interval_gives_a_curve_points(rows, batch, epochs, configured, expected):
    from peftbench.config.config import TrainingConfig

    config = TrainingConfig(batch_size=batch, epochs=epochs, logging_steps=configured)
    assert training.logging_interval(rows, config) == expected


def test_result_records_the_logging_interval_used(experiment):
    from peftbench.run import baselines, runner

    del experiment["training"]["logging_steps"]
    experiment["methods"] = [{"method": "head"}]
    workspace = _workspace(experiment)
    untrained = json.loads((baselines.run_untrained(workspace) / "result.json").read_text())
    assert untrained["status"] == "complete"  # evaluation-only trainers take the default too
    result = json.loads(
        (runner.run_method(workspace, workspace.config.methods[0]) / "result.json").read_text()
    )
    steps = result["efficiency"]["steps_trained"]
    assert steps >= 2 and result["training"]["logging_steps"] == 1
    assert len([row for row in result["logged_steps"] if "train_loss" in row]) == steps
