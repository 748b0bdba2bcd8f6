"""The before value and the alpha-0 point are cached under what they depend on, and hit across runs."""

import copy
import json
import shutil
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
import yaml
from conftest import WORDS
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.config.config import QuantizationConfig
from peftbench.forgetting import retention
from peftbench.grid.grid import RunSpec
from peftbench.inputs.experiment import build_config
from peftbench.inputs.run_inputs import prepare_inputs
from peftbench.run.worker import execute

GENERAL = " ".join(WORDS * 3)


@pytest.fixture
def config(tmp_path, tiny_gpt2, data_to_text_csv):
    general = tmp_path / "general.txt"
    general.write_text("\n".join(f"{GENERAL} {word}" for word in WORDS))
    return build_config(
        {
            "name": "cached",
            "task": "causal_lm",
            "model": str(tiny_gpt2),
            "data": {"dataset": str(data_to_text_csv), "text_column": "ref", "max_length": 12},
            "training": {"epochs": 1, "batch_size": 4, "learning_rate": 5e-2, "precision": "fp32"},
            "methods": [{"method": "full"}, {"method": "bitfit"}],
            "forgetting": {"dataset": str(general), "max_tokens": 64, "block_size": 16, "batch_size": 2},
            "interpolation": {"alphas": [0, 1], "max_eval_samples": 4},
            "output_dir": str(tmp_path / "runs"),
            "baselines": False,
        }
    )


def _spec(config, index: int) -> RunSpec:
    return RunSpec("method", "", config.model_copy(update={"methods": [config.methods[index]]}))


def _result(inputs, spec: RunSpec) -> dict:
    return json.loads((inputs.directory / spec.entry.run_name / "result.json").read_text())


def _key(inputs) -> str:
    return retention._digest(retention._text_key(inputs))


def _with_model(inputs, **changes):
    model = inputs.config.model.model_copy(update=changes)
    return replace(inputs, config=inputs.config.model_copy(update={"model": model}))


def test_the_before_key_changes_with_everything_that_changes_the_base_models_outputs(config):
    inputs = prepare_inputs(config)
    key = _key(inputs)
    assert _key(replace(inputs)) == key  # another RunInputs of the same content
    batched = config.forgetting.model_copy(update={"batch_size": 5})  # batching does not change the loss
    assert _key(replace(inputs, config=config.model_copy(update={"forgetting": batched}))) == key
    training = config.training.model_copy(update={"precision": "bf16"})
    half = copy.deepcopy(inputs.base_model).to(torch.bfloat16)
    variants = {
        "revision": _with_model(inputs, revision="0123abc"),
        "gguf_file": _with_model(inputs, gguf_file="model-Q8_0.gguf"),
        "quantization": _with_model(inputs, quantization=QuantizationConfig(bits=8)),
        "attn_implementation": _with_model(inputs, attn_implementation="eager"),
        "precision": replace(inputs, config=config.model_copy(update={"training": training})),
        "dtype": replace(inputs, base_model=half),
        "path": replace(inputs, source=replace(inputs.source, path=inputs.source.path + "-other")),
    }
    changed = {name: _key(other) != key for name, other in variants.items()}
    assert changed == dict.fromkeys(variants, True)


def test_weights_replaced_in_place_change_the_key(config, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(config.model.name, model)
    config = config.model_copy(update={"model": config.model.model_copy(update={"name": str(model)})})
    inputs = prepare_inputs(config)
    key = _key(inputs)
    (weights,) = model.glob("*.safetensors")
    weights.write_bytes(weights.read_bytes() + b" ")
    assert _key(inputs) != key


def test_the_second_run_reads_before_and_alpha_zero_and_another_attention_measures_again(config):
    inputs = prepare_inputs(config)
    execute(_spec(config, 0), inputs)
    first = _result(inputs, _spec(config, 0))
    retention._PROBES.clear()  # a later run in its own process (the default executor)
    execute(_spec(config, 1), prepare_inputs(config))
    second = _result(inputs, _spec(config, 1))
    assert (first["forgetting"]["cache"], first["interpolation_info"]["cache"]) == ("miss", "miss")
    assert (second["forgetting"]["cache"], second["interpolation_info"]["cache"]) == ("hit", "hit")
    assert second["forgetting"]["before"] == first["forgetting"]["before"]
    assert second["interpolation"][0] == first["interpolation"][0]
    assert first["interpolation"][0]["forgetting"] == pytest.approx(0, abs=1e-6)

    shutil.rmtree(inputs.directory / retention.CACHE_FOLDER)  # scored again, it is the same number
    retention._PROBES.clear()
    execute(_spec(config, 1), prepare_inputs(config))
    again = _result(inputs, _spec(config, 1))
    assert again["interpolation_info"]["cache"] == "miss"
    assert again["interpolation"][0]["value"] == pytest.approx(first["interpolation"][0]["value"], rel=1e-6)
    assert again["forgetting"]["before"] == pytest.approx(first["forgetting"]["before"], rel=1e-6)

    eager = _with_model(inputs, attn_implementation="eager").config
    retention._PROBES.clear()
    execute(_spec(eager, 1), prepare_inputs(eager))
    other = _result(inputs, _spec(eager, 1))
    assert (other["forgetting"]["cache"], other["interpolation_info"]["cache"]) == ("miss", "miss")


def test_inline_runs_sharing_a_process_score_alpha_zero_once(config):
    inputs = prepare_inputs(config)  # as `--inline` does: one RunInputs per seed and data, renamed per spec
    inputs = execute(_spec(config, 0), inputs)
    execute(_spec(config, 1), inputs)
    first, second = (_result(inputs, _spec(config, i)) for i in (0, 1))
    assert first["interpolation_info"]["cache"] == "miss"
    assert (second["forgetting"]["cache"], second["interpolation_info"]["cache"]) == ("hit", "hit")
    assert second["interpolation"][0] == first["interpolation"][0]
    assert len(list((inputs.directory / retention.CACHE_FOLDER).iterdir())) == 2  # before, alpha 0


def test_the_default_executor_scores_alpha_zero_once_across_its_processes(config, tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    result = CliRunner().invoke(app, ["run", str(path)])  # one worker process per run
    assert result.exit_code == 0, result.output
    folder = tmp_path / "runs" / "cached"
    full, bitfit = (json.loads((folder / name / "result.json").read_text()) for name in ("full", "bitfit"))
    assert (full["forgetting"]["cache"], full["interpolation_info"]["cache"]) == ("miss", "miss")
    assert (bitfit["forgetting"]["cache"], bitfit["interpolation_info"]["cache"]) == ("hit", "hit")
    assert bitfit["interpolation"][0] == full["interpolation"][0]


def test_a_key_holding_a_secret_is_stored_redacted_and_still_hits(tmp_path, monkeypatch):
    secret = "hf_secret_revision_value"
    monkeypatch.setenv("HF_TOKEN", secret)
    inputs, calls = SimpleNamespace(directory=tmp_path), []
    key = {"model": {"revision": secret}}
    assert retention.cached(inputs, "alpha0", key, lambda: calls.append(1) or 0.5) == (0.5, "miss")
    assert retention.cached(inputs, "alpha0", key, lambda: calls.append(1) or 0.7) == (0.5, "hit")
    other = {"model": {"revision": secret + "2"}}  # redacted alike, but another file
    assert retention.cached(inputs, "alpha0", other, lambda: 0.9) == (0.9, "miss")
    written = "".join(p.read_text() for p in (tmp_path / retention.CACHE_FOLDER).iterdir())
    assert secret not in written and len(calls) == 1
