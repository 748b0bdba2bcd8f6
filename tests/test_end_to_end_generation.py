import json

import pytest
import yaml
from peft import PeftModel
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from peftbench.cli import app

runner = CliRunner()
pytestmark = pytest.mark.slow


def _run(tmp_path, experiment) -> dict[str, dict]:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "runs" / experiment["name"]
    return {p.parent.name: json.loads(p.read_text()) for p in folder.glob("*/result.json")}


def _experiment(tmp_path, model, data, task, methods, **data_options):
    return {
        "name": f"{task}-run",
        "task": task,
        "model": str(model),
        "data": {"dataset": str(data), **data_options},
        "training": {"epochs": 2, "batch_size": 4, "learning_rate": 5e-3, "logging_steps": 2},
        "generation": {"max_new_tokens": 5, "batch_size": 4, "num_samples": 3},
        "methods": methods,
        "output_dir": str(tmp_path / "runs"),
    }


def _full_and_lora_data_to_text(tmp_path, model, csv) -> dict:
    methods = [{"method": "full"}, {"method": "lora", "r": 2, "target_modules": "all-linear"}]
    return _experiment(
        tmp_path, model, csv, "generation", methods, prompt_template="{mr} :", target_column="ref"
    )


def test_generation_run_writes_scores_and_samples(tmp_path, tiny_llama_lm, data_to_text_csv):
    experiment = _full_and_lora_data_to_text(tmp_path, tiny_llama_lm, data_to_text_csv)
    found = _run(tmp_path, experiment)
    assert set(found) == {"baseline-untrained", "full", "lora"}  # no majority baseline for generation
    for run, result in found.items():
        metrics = result["metrics"]["test"]
        for name in ("bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL", "rougeLsum", "perplexity"):
            assert metrics[name] is not None and metrics[name] >= 0, (run, name)
        assert metrics["target_tokens"] > 0 and metrics["generated_tokens_mean"] <= 5
        assert len(result["samples"]) == 3 and set(result["samples"][0]) >= {
            "prompt",
            "references",
            "generated",
        }
        assert result["metric_notes"]["bleu_signature"].startswith("nrefs:")
        lines = (tmp_path / "runs" / "generation-run" / run / "generations.jsonl").read_text().splitlines()
        assert len(lines) == result["data"]["evaluation_prompts"]
        losses = (tmp_path / "runs" / "generation-run" / run / "target_losses.jsonl").read_text().splitlines()
        per_example = [json.loads(line) for line in losses]
        assert len(per_example) == result["data"]["sizes"]["test"]
        tokens = sum(r["target_tokens"] for r in per_example)
        assert tokens == result["metrics"]["test"]["target_tokens"]
        mean = sum(r["nll_sum"] for r in per_example) / tokens
        assert mean == pytest.approx(result["metrics"]["test"]["loss"], rel=1e-9)
        generations = [json.loads(line) for line in lines]  # numbered by prompt, as the units are
        units = [r["unit"] for r in per_example]
        assert [units.count(g["index"]) for g in generations] == [len(g["references"]) for g in generations]
    # full fine-tuning at this rate must move the target perplexity away from the untrained model's
    assert (
        found["full"]["metrics"]["test"]["perplexity"]
        < found["baseline-untrained"]["metrics"]["test"]["perplexity"]
    )
    assert found["lora"]["history"][0]["validation_loss"] is not None
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_lm)
    adapter = tmp_path / "runs" / "generation-run" / "lora" / "adapter"
    assert isinstance(PeftModel.from_pretrained(base, adapter), PeftModel)

    compared = runner.invoke(app, ["compare", str(tmp_path / "runs" / "generation-run"), "--samples", "1"])
    assert compared.exit_code == 0, compared.output
    assert "bleu" in compared.output and "generated samples" in compared.output
    shown = " ".join(compared.output.split())
    first = found["full"]["samples"][0]
    assert " ".join(first["prompt"].split()) in shown  # the sample's own text, not just the row label
    assert " ".join(first["references"][0].split()) in shown


def test_seq2seq_generation_with_prompt_tuning(tmp_path, tiny_t5, data_to_text_csv):
    methods = [
        {"method": "prompt_tuning", "num_virtual_tokens": 3},
        {"method": "prefix_tuning", "num_virtual_tokens": 3},
    ]
    experiment = _experiment(
        tmp_path,
        tiny_t5,
        data_to_text_csv,
        "generation",
        methods,
        prompt_template="{mr}",
        target_column="ref",
    )
    found = _run(tmp_path, experiment)
    assert found["prompt_tuning"]["data"]["encoder_decoder"] is True
    # virtual tokens x d_model, once for the encoder and once for the decoder (PEFT's seq2seq default)
    assert found["prompt_tuning"]["efficiency"]["trainable_params"] == 2 * 3 * 16


def test_causal_lm_on_a_model_without_pad_token(tmp_path, tiny_gpt2, data_to_text_csv):
    methods = [{"method": "lora", "r": 2, "target_modules": ["c_attn"]}, {"method": "head"}]
    experiment = _experiment(
        tmp_path, tiny_gpt2, data_to_text_csv, "causal_lm", methods, text_column="ref", max_length=8
    )
    found = _run(tmp_path, experiment)
    for result in found.values():
        metrics = result["metrics"]["test"]
        assert metrics["perplexity"] == pytest.approx(2.718281828 ** metrics["loss"], rel=1e-6)
        assert result["data"]["pad_token_is_eos"] is True
    assert found["head"]["efficiency"]["trainable_params"] == 18 * 16  # tied output = input embeddings
    losses = (tmp_path / "runs" / "causal_lm-run" / "head" / "target_losses.jsonl").read_text()
    documents = [json.loads(line)["unit"] for line in losses.splitlines()]
    assert documents == sorted(documents) and len(set(documents)) > 1  # blocks in text order, by text
    reported = runner.invoke(app, ["report", str(tmp_path / "runs" / "causal_lm-run")])
    assert reported.exit_code == 0, reported.output
    text = (tmp_path / "runs" / "causal_lm-run" / "report.md").read_text()
    assert f"paired bootstrap over {len(set(documents))} documents" in text


def test_the_lora_papers_e2e_settings_run_and_report_its_columns(tmp_path, tiny_llama_lm, data_to_text_csv):
    experiment = _full_and_lora_data_to_text(tmp_path, tiny_llama_lm, data_to_text_csv)
    experiment["training"].update(epochs=1, label_smoothing=0.1)
    columns = ["bleu", "nist", "meteor", "rougeL", "cider", "perplexity"]
    paper = {"num_beams": 3, "length_penalty": 0.8, "no_repeat_ngram_size": 4, "report_metrics": columns}
    experiment["generation"].update(paper)
    found = _run(tmp_path, experiment)
    for result in found.values():
        metrics = result["metrics"]["test"]
        assert metrics["nist"] >= 0 and metrics["cider"] >= 0
        assert result["decoding"]["length_penalty"] == 0.8
    assert found["lora"]["training"]["label_smoothing"] == found["full"]["training"]["label_smoothing"] == 0.1
    folder = tmp_path / "runs" / "generation-run"
    reported = runner.invoke(app, ["report", str(folder)])
    assert reported.exit_code == 0, reported.output
    page = (folder / "report.md").read_text()
    header = next(line for line in page.splitlines() if line.startswith("| run | n |"))
    assert all(name in header for name in ("BLEU", "NIST", "ROUGE-L", "CIDEr", "ppl"))
    assert "lora − full (paired bootstrap over prompts" in page and "NIST " in page
