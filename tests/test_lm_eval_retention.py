"""Retention on lm-eval tasks: the before score is lm-eval's own on the base model, the after score is the
tuned model's as it ships (adapter active), the before score is cached per experiment."""

import copy
import importlib.util
import json
from pathlib import Path

import lm_eval
import numpy as np
import pytest
import torch
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
from peft import LoraConfig, get_peft_model
from scipy import stats as scipy_stats
from transformers import AutoModelForCausalLM, AutoTokenizer

from peftbench.config.retention_config import RetentionConfig
from peftbench.errors import PeftbenchError
from peftbench.forgetting import benchmarks_eval, retention
from peftbench.grid.grid import RunSpec
from peftbench.inputs.experiment import build_config
from peftbench.inputs.run_inputs import prepare_inputs
from peftbench.report.build import build
from peftbench.report.tables import quality_table
from peftbench.run.worker import execute

ROOT = Path(__file__).parents[1]
TASKS = "tests/data/retention"  # its data_files path is relative to the repository root
TASK = "peftbench_tiny_mc"


@pytest.fixture(autouse=True)
def at_the_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _config(model, data, tmp_path, methods, task="causal_lm", **data_keys):
    return build_config(
        {
            "name": "retained",
            "task": task,
            "model": str(model),
            "data": {"dataset": str(data), **data_keys},
            "training": {"epochs": 1, "batch_size": 4, "learning_rate": 5e-2, "precision": "fp32"},
            "methods": methods,
            "forgetting": False,
            "interpolation": False,
            "retention": {"tasks": [TASK], "include_path": TASKS},
            "output_dir": str(tmp_path / "runs"),
            "baselines": False,
        }
    )


def _by_hand(model_dir) -> float:
    """lm-eval on its own: the checkpoint loaded afresh, lm-eval's task manager and evaluator."""
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    lm = HFLM(pretrained=model, tokenizer=AutoTokenizer.from_pretrained(model_dir), batch_size=4)
    manager = TaskManager(include_path=TASKS, include_defaults=False)
    results = lm_eval.simple_evaluate(model=lm, tasks=[TASK], task_manager=manager)
    return results["results"][TASK]["acc,none"]


def test_before_is_lm_evals_score_of_the_base_model_and_the_second_run_reads_it(
    tiny_gpt2, data_to_text_csv, tmp_path
):
    methods = [{"method": "full"}, {"method": "lora", "r": 4, "target_modules": ["c_attn"]}]
    config = _config(tiny_gpt2, data_to_text_csv, tmp_path, methods, text_column="ref", max_length=12)
    inputs = prepare_inputs(config)
    found = []
    for index in (0, 1):
        spec = RunSpec("method", "", config.model_copy(update={"methods": [config.methods[index]]}))
        execute(spec, inputs)
        found.append(json.loads((inputs.directory / spec.entry.run_name / "result.json").read_text()))
    first, second = (r["retention"]["tasks"][TASK] for r in found)
    assert (first["cache"], second["cache"]) == ("miss", "hit")
    assert first["before"] == second["before"] == pytest.approx(_by_hand(tiny_gpt2), abs=1e-12)
    assert first["items"] == 40 and first["metric"] == "acc"
    assert first["change"] == pytest.approx(first["after"] - first["before"])
    assert first["change_ci95_low"] <= first["change"] <= first["change_ci95_high"]
    assert first["seconds"] > 0 and found[1]["retention"]["reason"] is None
    cached = list((inputs.directory / retention.CACHE_FOLDER).glob("lm-eval-before-*.json"))
    assert len(cached) == 1

    report = build(inputs.directory)
    assert "retention" in quality_table(report.rows, report.metrics, report.reference).header
    assert any(title.endswith(f"{TASK} retention (lm-eval)") for title in report.figures)
    assert f"retention_{TASK}" in [m["key"] for m in report.explore["metrics"]]


@pytest.fixture
def lm(tiny_gpt2):
    return AutoModelForCausalLM.from_pretrained(tiny_gpt2), AutoTokenizer.from_pretrained(tiny_gpt2)


def _items(model, tokenizer) -> dict:
    config = RetentionConfig(tasks=[TASK], include_path=TASKS)
    return benchmarks_eval.score_task(model, tokenizer, config, TASK)


def test_the_after_score_follows_the_weights(lm):
    model, tokenizer = lm
    base = _items(model, tokenizer)
    changed = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in changed.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 2)
    after = _items(changed, tokenizer)
    assert after["items"] != base["items"]
    assert after["score"] == pytest.approx(np.mean(list(after["items"].values())))
    assert _items(model, tokenizer)["items"] == base["items"]  # scoring left the model as it was


def test_an_adapter_is_scored_active_as_its_merged_model_is(lm):
    model, tokenizer = lm
    base = _items(model, tokenizer)
    tuned = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, target_modules=["c_attn"], lora_alpha=64))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in tuned.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
    active = _items(tuned, tokenizer)
    merged = _items(copy.deepcopy(tuned).merge_and_unload(), tokenizer)
    assert active["items"] != base["items"]
    assert active["items"] == merged["items"]


def test_a_classifier_gets_null_with_the_reason(tiny_bert, reviews_csv, tmp_path):
    config = _config(tiny_bert, reviews_csv, tmp_path, [{"method": "full"}], task="classification")
    inputs = prepare_inputs(config)
    found = benchmarks_eval.measure(inputs, inputs.base_model)
    assert found["tasks"] is None
    assert "no language-model head" in found["reason"]


def test_without_lm_eval_the_config_is_refused_naming_the_extra(experiment, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "lm_eval" else real(name))
    with pytest.raises(PeftbenchError, match=r"pip install peftbench\[retention\]"):
        build_config(experiment | {"retention": [TASK]})


def test_a_missing_task_folder_is_refused_before_any_run(experiment):
    with pytest.raises(PeftbenchError, match="retention.include_path 'nowhere' is not a folder"):
        build_config(experiment | {"retention": {"tasks": [TASK], "include_path": "nowhere"}})


def test_an_unknown_task_is_named_with_where_it_was_looked_for():
    config = RetentionConfig(tasks=["no_such_task"], include_path=TASKS)
    benchmarks_eval._MANAGERS.clear()
    with pytest.raises(PeftbenchError, match="no_such_task.*include_path"):
        benchmarks_eval._task_manager(config.model_copy(update={"tasks": ["no_such_task"]}))


def test_the_change_interval_is_a_paired_bootstrap_over_items():
    rng = np.random.default_rng(3)
    before = (rng.random(60) < 0.5).astype(float)
    after = np.where(rng.random(60) < 0.3, 1 - before, before)
    keys = [f"t/{i}" for i in range(60)]

    def scored(values):
        return {"score": values.mean(), "stderr": 0.2, "items": dict(zip(keys, values, strict=True))}

    found = benchmarks_eval.change(scored(before), scored(after), resamples=4000)
    reference = scipy_stats.bootstrap(
        (after - before,), np.mean, n_resamples=4000, method="percentile", random_state=0
    ).confidence_interval
    assert found["change"] == pytest.approx(after.mean() - before.mean())
    assert found["change_ci95_low"] == pytest.approx(reference.low, abs=0.02)
    assert found["change_ci95_high"] == pytest.approx(reference.high, abs=0.02)
    unpaired = benchmarks_eval.change(scored(before) | {"items": None}, scored(after), 100)
    assert unpaired["change_ci95_high"] - unpaired["change"] == pytest.approx(1.96 * np.hypot(0.2, 0.2))


def test_a_config_without_retention_keeps_its_run_hashes(experiment):
    import hashlib

    from peftbench.grid.grid import RESULT_SCHEMA_VERSION, redact_text

    config = build_config(experiment)
    identity = config.model_dump(mode="json", exclude={"output_dir"})
    identity.pop("retention")
    identity["kind"], identity["schema"] = "method", RESULT_SCHEMA_VERSION
    text = redact_text(json.dumps(identity, sort_keys=True))
    assert RunSpec("method", "", config).config_hash == hashlib.sha256(text.encode()).hexdigest()[:16]
    on = config.model_copy(update={"retention": RetentionConfig(tasks=[TASK])})
    assert RunSpec("method", "", on).config_hash != RunSpec("method", "", config).config_hash
