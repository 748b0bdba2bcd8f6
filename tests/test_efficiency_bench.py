"""bench-inference on a finished tiny run: three variants timed, the merge checked, bad runs refused."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.efficiency.bench import generate_workload
from peftbench.inputs.experiment import build_config
from peftbench.inputs.run_inputs import prepare_inputs

runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture
def finished(experiment, tmp_path):
    experiment["baselines"] = False
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(experiment))
    result = runner.invoke(app, ["run", str(path), "--inline"])
    assert result.exit_code == 0, result.output
    return tmp_path / "runs" / "tiny"


def test_bench_inference_times_base_adapter_and_merged(finished):
    result = runner.invoke(
        app,
        ["bench-inference", str(finished / "lora"), "--samples", "8", "--batch-size", "4", "--repeats", "3"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((finished / "lora" / "inference.json").read_text())
    assert [v["variant"] for v in report["variants"]] == ["base", "adapter", "merged"]
    for variant in report["variants"]:
        assert len(variant["passes_seconds"]) == 3 and variant["units_per_pass"] == 8
        assert variant["samples_per_second"] > 0 and variant["batches"] == 2
    assert report["merge"]["match"] is True and report["merge"]["max_abs_logit_difference"] < 1e-4
    assert "match" in result.output


def test_bench_inference_refuses_a_run_without_an_adapter(finished, tmp_path):
    full = runner.invoke(app, ["bench-inference", str(finished / "full")])
    assert full.exit_code == 2 and "has no adapter" in full.output
    empty = runner.invoke(app, ["bench-inference", str(tmp_path)])
    assert empty.exit_code == 2 and "result.json missing" in empty.output


def test_generation_timing_makes_every_variant_generate_the_same_tokens(
    tiny_llama_lm, data_to_text_csv, tmp_path
):
    config = build_config(
        {
            "name": "g",
            "task": "generation",
            "model": str(tiny_llama_lm),
            "data": {"dataset": str(data_to_text_csv), "prompt_template": "{mr} :", "target_column": "ref"},
            "generation": {"max_new_tokens": 8},
            "methods": [{"method": "full"}],
            "output_dir": str(tmp_path),
        }
    )
    workspace = prepare_inputs(config)
    model = workspace.base_model
    eos = workspace.tokenizer.eos_token_id

    def wants_to_stop(module, inputs, logits):  # a model that would end every sequence at once
        logits[..., eos] += 1e4
        return logits

    model.get_output_embeddings().register_forward_hook(wants_to_stop)
    workload, prompts = generate_workload(workspace, samples=4, batch_size=2, max_new_tokens=5)
    assert len(prompts) >= 2 and workload(model) == len(prompts) * 5


def test_an_adapter_around_berts_pooler_merges(tiny_bert, tmp_path):
    """The pooler belongs to the classification head (modules_to_save); PEFT 0.21 cannot unload IA3 around
    a wrapped module without a weight, so the trained head is put in place before merging."""
    from types import SimpleNamespace

    import torch
    from transformers import AutoModelForSequenceClassification

    from peftbench.config.config import MethodConfig
    from peftbench.efficiency.bench import merge_check, variants
    from peftbench.methods import prepare_model
    from peftbench.tasks import TASKS, method_context

    def load():
        torch.manual_seed(0)
        return AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)

    model = load()
    context = method_context(TASKS.get("classification"), model, str(tiny_bert), num_training_steps=4)
    prepare_model(model, MethodConfig(method="ia3"), context).save_pretrained(tmp_path / "adapter")
    models, problem = variants(SimpleNamespace(base_model=load()), tmp_path)
    assert "merged" in models, problem
    batch = {"input_ids": torch.tensor([[2, 5, 6, 3]])}
    assert merge_check(models["adapter"], models["merged"], batch)["match"]
