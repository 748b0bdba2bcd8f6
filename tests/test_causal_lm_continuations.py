"""causal_lm with generation.max_eval_prompts: test blocks continued by the model and scored by the text
metrics (seed 004 reported BLEU, chrF, TER and ROUGE of WikiText continuations)."""

import json

import pytest
import yaml
from sacrebleu.metrics import BLEU
from typer.testing import CliRunner

from peftbench.cli import app

runner = CliRunner()
pytestmark = pytest.mark.slow


def _run(tmp_path, model, data, generation: dict) -> dict:
    experiment = {
        "name": "lm",
        "task": "causal_lm",
        "model": str(model),
        "data": {"dataset": str(data), "text_column": "ref", "max_length": 8},
        "training": {"epochs": 1, "batch_size": 4, "learning_rate": 5e-3},
        "generation": {"max_new_tokens": 4, "batch_size": 4, **generation},
        "methods": [{"method": "lora", "r": 2, "target_modules": ["c_attn"]}],
        "baselines": False,
        "output_dir": str(tmp_path / "runs"),
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / "runs" / "lm" / "lora" / "result.json").read_text())


def test_continuations_are_scored_against_the_second_half_of_each_block(
    tmp_path, tiny_gpt2, data_to_text_csv
):
    result = _run(tmp_path, tiny_gpt2, data_to_text_csv, {"num_samples": 1, "max_eval_prompts": 3})
    metrics = result["metrics"]["test"]
    assert metrics["continuations_scored"] == 3 and len(result["samples"]) == 1
    rows = [json.loads(line) for line in (tmp_path / "runs" / "lm" / "lora" / "generations.jsonl").open()]
    expected = BLEU().corpus_score([r["generated"] for r in rows], [[r["references"][0] for r in rows]])
    assert metrics["bleu"] == pytest.approx(expected.score)
    assert {"chrf", "ter", "rougeL", "meteor"} <= set(metrics)
    assert result["metric_notes"]["bleu_signature"].startswith("nrefs:1")


def test_without_max_eval_prompts_only_samples_are_written(tmp_path, tiny_gpt2, data_to_text_csv):
    result = _run(tmp_path, tiny_gpt2, data_to_text_csv, {"num_samples": 2})
    assert "bleu" not in result["metrics"]["test"] and len(result["samples"]) == 2
