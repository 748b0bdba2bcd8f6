"""inspect: counts and memory estimated on the meta device against the same model built for real."""

import copy
import json
import random
import shutil

import pytest
import torch
import yaml
from transformers import BertConfig, BertForSequenceClassification
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.config.config import MethodConfig
from peftbench.efficiency.estimate import estimate_memory, inspect_method, meta_model, saved_activation_bytes
from peftbench.measure.measure import count_parameters
from peftbench.methods import prepare_model
from peftbench.models.models import ModelSource
from peftbench.tasks import TASKS, method_context

runner = CliRunner()
WORDS = ["good", "great", "fine", "bad", "awful", "poor", "ok", "meh", "drug", "pain", "sleep", "works"]
LORA = MethodConfig(method="lora", r=4, target_modules=["query", "value"])


def _real(tiny_bert, entry: MethodConfig):
    """The same model and method, built with real weights on the CPU."""
    task = TASKS.get("classification")
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = task.model_from_config(meta_model(ModelSource(str(tiny_bert)), task).config, 2)
    return prepare_model(model, entry, method_context(task, model, str(tiny_bert), 10)).train()


def test_meta_counts_equal_the_real_models(tiny_bert):
    task = TASKS.get("classification")
    base = meta_model(ModelSource(str(tiny_bert)), task, num_labels=2)
    assert next(base.parameters()).device.type == "meta"
    for entry in (MethodConfig(method="full"), LORA, MethodConfig(method="freeze", frozen_layers=1)):
        found = inspect_method(base, task, entry, str(tiny_bert), batch_size=4, seq_len=16)
        real = count_parameters(_real(tiny_bert, entry))
        assert (found.total_params, found.trainable_params) == (
            real["total_params"],
            real["trainable_params"],
        )


def test_weight_gradient_and_optimizer_bytes_match_a_real_training_step(tiny_bert):
    model = _real(tiny_bert, LORA)
    inputs = TASKS.get("classification").example_batch(4, 16, device="cpu")
    estimate = estimate_memory(model, inputs)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    model(**inputs).loss.backward()
    optimizer.step()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    states = sum(
        t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values() if t.dim()
    )
    assert estimate.gradients == grads and estimate.optimizer == states
    assert estimate.weights == sum(p.numel() * p.element_size() for p in model.parameters())


def test_meta_activations_are_close_to_what_a_real_forward_saves(tiny_bert):
    task = TASKS.get("classification")
    for entry in (MethodConfig(method="full"), LORA):
        base = meta_model(ModelSource(str(tiny_bert)), task)
        estimate = inspect_method(
            base, task, entry, str(tiny_bert), batch_size=8, seq_len=32
        ).memory.activations
        real = saved_activation_bytes(_real(tiny_bert, entry), task.example_batch(8, 32, device="cpu"))
        assert 0.9 * real <= estimate <= 1.25 * real, (entry.method, estimate, real)


def test_activations_grow_with_the_batch_and_lora_saves_less_than_full(tiny_bert):
    task = TASKS.get("classification")
    base = meta_model(ModelSource(str(tiny_bert)), task)
    small, large = (inspect_method(base, task, LORA, str(tiny_bert), batch, 16).memory for batch in (4, 8))
    assert large.activations > 1.8 * small.activations
    full = inspect_method(copy.deepcopy(base), task, MethodConfig(method="full"), str(tiny_bert), 8, 16)
    # LoRA also trains the task head, pooler included: 306 of this 16-dim model's 6,114 parameters.
    assert full.memory.activations > large.activations and full.memory.optimizer > 5 * large.optimizer


def test_inspect_command_prints_and_writes_json(tiny_bert, tmp_path):
    out = tmp_path / "inspect.json"
    result = runner.invoke(
        app,
        [
            "inspect",
            "--model",
            str(tiny_bert),
            "--method",
            "full",
            "--method",
            "lora:r=4:target_modules=[query,value]",
            "--batch-size",
            "4",
            "--seq-len",
            "16",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "activations" in result.output and "adapter" in result.output
    payload = json.loads(out.read_text())
    lora = payload["methods"][1]
    assert lora["method"] == "lora" and lora["artifact"] == "adapter"
    assert lora["artifact_bytes"] == lora["trainable_params"] * 4
    assert lora["memory"]["total"] == sum(v for k, v in lora["memory"].items() if k != "total")


def test_inspect_bad_input_is_one_clear_line(tmp_path, monkeypatch):
    missing = runner.invoke(app, ["inspect", "--model", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = runner.invoke(app, ["inspect", "--model", "no-such-org/no-such-model"])
    assert offline.exit_code == 2 and "hub is offline" in offline.output
    bad_option = runner.invoke(app, ["inspect", "--model", "x", "--method", "lora:rank"])
    assert bad_option.exit_code == 2 and "is not key=value" in bad_option.output


@pytest.mark.slow
def test_estimate_against_the_measured_peak_of_a_real_run(tmp_path, tiny_bert):
    """A real `peftbench run` (worker process, so the RSS baseline is clean) of a 4-layer, 256-wide BERT
    on 128-token texts: the measured growth of peak RSS during training against inspect's estimate of
    gradients + optimizer + activations (the weights are loaded before the baseline is taken)."""
    model_dir = tmp_path / "bert-256"
    shutil.copytree(tiny_bert, model_dir)
    config = BertConfig.from_pretrained(model_dir)
    config.update(
        {
            "hidden_size": 256,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "intermediate_size": 1024,
            "max_position_embeddings": 128,
        }
    )
    BertForSequenceClassification(config).save_pretrained(model_dir)
    random.seed(0)
    rows = ["text,label"] + [
        " ".join(random.choices(WORDS, k=140)) + f",{random.choice(['good', 'bad'])}" for _ in range(80)
    ]
    (tmp_path / "long.csv").write_text("\n".join(rows) + "\n")
    experiment = {
        "name": "memory",
        "model": str(model_dir),
        "data": {"dataset": str(tmp_path / "long.csv"), "max_length": 128},
        "training": {"epochs": 1, "batch_size": 32, "learning_rate": 1e-4, "precision": "fp32"},
        "methods": [{"method": "full"}],
        "baselines": False,
        "output_dir": str(tmp_path / "runs"),
    }
    path = tmp_path / "memory.yaml"
    path.write_text(yaml.safe_dump(experiment))
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 0, result.output
    efficiency = json.loads((tmp_path / "runs" / "memory" / "full" / "result.json").read_text())["efficiency"]
    measured = efficiency["peak_rss_above_start_bytes"]
    task = TASKS.get("classification")
    base = meta_model(ModelSource(str(model_dir)), task)
    memory = inspect_method(base, task, MethodConfig(method="full"), str(model_dir), 32, 128).memory
    estimate = memory.gradients + memory.optimizer + memory.activations
    print(f"estimate {estimate / 2**20:.1f} MiB, measured {measured / 2**20:.1f} MiB")
    assert 0.6 * measured <= estimate <= 1.4 * measured, (estimate / 2**20, measured / 2**20)
