"""Every claim of the capability table (`peftbench methods`, docs/methods.md), checked on tiny models in
both directions: a claimed capability works, a denied one fails. Flip a derived value: a test goes red."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from peft import PromptLearningConfig
from peft.tuners.tuners_utils import BaseTunerLayer
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
)

from peftbench.cli import capabilities
from peftbench.config.config import MethodConfig, QuantizationConfig
from peftbench.efficiency import bench
from peftbench.errors import PeftbenchError
from peftbench.methods import METHODS, check_quantized_base, prepare_model
from peftbench.models import quantization
from peftbench.tasks import TASKS, method_context

DOCS = Path(__file__).resolve().parents[1] / "docs" / "methods.md"
TABLE = {row.method: row for row in capabilities.table()}
ADAPTERS = [name for name, row in TABLE.items() if name in capabilities.PEFT_TYPES]
OTHERS = [name for name in TABLE if name not in capabilities.PEFT_TYPES]

# Options that fit a 16-dim, 2-layer model (the defaults assume hidden sizes in the hundreds).
TINY = {
    "adaption_prompt": {"adapter_len": 2, "adapter_layers": 1},
    "c3a": {"block_size": 4},
    "fourierft": {"n_frequency": 16},
    "freeze": {"frozen_layers": 1},
    "ln_tuning": {"target_modules": ["LayerNorm", "input_layernorm", "layer_norm", "ln_1"]},
    "miss": {"r": 4},
    "psoft": {"r": 4},
    "road": {"group_size": 8},
    "shira": {"r": 2},
    "trainable_tokens": {"token_indices": [5, 6]},
    "vblora": {"vector_length": 4},
    "waveft": {"n_frequency": 16},
}
# The tiny models of each task (fixture, model class): a claimed task must train on at least one of them.
TASK_MODELS = {
    "classification": [("tiny_bert", AutoModelForSequenceClassification), ("tiny_llama", None)],
    "causal_lm": [("tiny_gpt2", AutoModelForCausalLM), ("tiny_llama_lm", AutoModelForCausalLM)],
    "generation": [
        ("tiny_gpt2", AutoModelForCausalLM),
        ("tiny_llama_lm", AutoModelForCausalLM),
        ("tiny_t5", AutoModelForSeq2SeqLM),
    ],
}


def _entry(name: str) -> MethodConfig:
    return MethodConfig(method=name, **TINY.get(name, {}))


def _load(path, auto, **kwargs):
    torch.manual_seed(0)
    if auto is AutoModelForSequenceClassification or auto is None:
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, **kwargs)
    return auto.from_pretrained(path, **kwargs)


def _prepared(task: str, path, auto, name: str, **kwargs):
    model = _load(path, auto, **kwargs)
    context = method_context(TASKS.get(task), model, str(path), num_training_steps=4)
    return prepare_model(model, _entry(name), context)


def _trains(prepared, task: str) -> None:
    """One forward and backward pass: the loss reaches a trainable weight."""
    ids = torch.tensor([[5, 6, 7, 8, 9, 10], [6, 7, 8, 9, 10, 11]])
    if task == "classification":
        batch = {"input_ids": ids, "labels": torch.tensor([0, 1])}
    elif prepared.config.is_encoder_decoder:
        batch = {"input_ids": ids, "labels": ids[:, :3].contiguous()}
    else:
        batch = {"input_ids": ids, "labels": ids}
    prepared(**batch).loss.backward()
    assert any(p.grad is not None for p in prepared.parameters() if p.requires_grad)


def _outcome(request, task: str, name: str) -> list[str]:
    """Per tiny model of the task, up to the first it trains on: 'ok', or why it did not build."""
    found = []
    for fixture, auto in TASK_MODELS[task]:
        try:
            _trains(_prepared(task, request.getfixturevalue(fixture), auto, name), task)
        except (PeftbenchError, ValueError, RuntimeError) as exc:  # refused, or fails in its first step
            found.append(f"{fixture}: {type(exc).__name__}: {exc}")
            continue
        return [*found, "ok"]
    return found


@pytest.mark.parametrize("name", list(TABLE))
@pytest.mark.parametrize("task", list(TASKS))
def test_a_method_trains_on_exactly_the_tasks_it_claims(request, name, task):
    outcome = _outcome(request, task, name)
    if task in TABLE[name].tasks:
        assert "ok" in outcome, f"{name} claims {task} but builds on no tiny {task} model: {outcome}"
    else:
        assert "ok" not in outcome, f"{name} denies {task} but trains on a tiny {task} model"


@pytest.mark.parametrize(
    ("task", "fixture", "auto"),
    [(t, f, a) for t, models in TASK_MODELS.items() for f, a in models],
)
def test_a_tasks_declared_peft_task_types_cover_its_models(request, task, fixture, auto):
    model = _load(request.getfixturevalue(fixture), auto)
    assert TASKS.get(task).peft_task_type(model) in TASKS.get(task).peft_task_types


def _perturbed(model) -> None:
    """Train-free: every adapter weight moved at random, so the adapter changes the outputs."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.1 * torch.randn(param.shape, generator=generator))


def _adapted(request, name: str):
    """The method on tiny BERT (classification: biases, which BEFT needs to merge), else on tiny Llama."""
    try:
        return "tiny_bert", _prepared("classification", request.getfixturevalue("tiny_bert"), None, name)
    except PeftbenchError:
        path = request.getfixturevalue("tiny_llama_lm")
        return "tiny_llama_lm", _prepared("causal_lm", path, AutoModelForCausalLM, name)


@pytest.mark.parametrize("name", [name for name in ADAPTERS if TABLE[name].tasks])
def test_merge_and_bench_inference_claims(request, tmp_path, name):
    """What bench-inference does with the run's adapter: load it on the base, merge a copy, compare."""
    fixture, adapted = _adapted(request, name)
    _perturbed(adapted)
    adapted.save_pretrained(tmp_path / "adapter")
    auto = None if fixture == "tiny_bert" else AutoModelForCausalLM
    base = _load(request.getfixturevalue(fixture), auto).eval()
    models, problem = bench.variants(SimpleNamespace(base_model=base), tmp_path)
    assert ("merged" in models) == TABLE[name].merges == TABLE[name].bench_merged, problem
    if "merged" in models:
        batch = {"input_ids": torch.tensor([[5, 6, 7, 8, 9, 10]])}
        assert not bench.merge_check(models["base"], models["adapter"], batch)["match"], "a no-op adapter"
        assert bench.merge_check(models["adapter"], models["merged"], batch)["match"]
        assert not any(isinstance(m, BaseTunerLayer) for m in models["merged"].modules())


def test_a_method_that_trains_on_no_task_claims_nothing_else():
    idle = [row for row in TABLE.values() if not row.tasks]
    assert idle and all(not row.merges and row.kbit_base == "no" for row in idle)


@pytest.mark.parametrize("name", OTHERS)
def test_methods_that_train_the_base_do_not_merge_and_bench_inference_refuses_them(tmp_path, name):
    assert TABLE[name].merges is None and TABLE[name].bench_merged is False
    (tmp_path / "result.json").write_text(json.dumps({"run": name, "method": {"name": name}}))
    with pytest.raises(PeftbenchError, match="has no adapter"):
        bench.load_run(tmp_path)


def _kbit_base(path):
    kwargs = quantization.load_kwargs(QuantizationConfig(bits=4, compute_dtype="fp32"))
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return quantization.prepare(model, QuantizationConfig(bits=4))


def _kbit_wrappers(model) -> list[str]:
    """The module paths of the PEFT layers that wrap a 4-bit linear layer."""
    return [
        type(m).__module__
        for m in model.modules()
        if isinstance(m, BaseTunerLayer) and type(m.get_base_layer()).__name__ == "Linear4bit"
    ]


@pytest.mark.parametrize("name", OTHERS)
def test_methods_that_train_the_base_refuse_a_kbit_base(name):
    assert TABLE[name].kbit_base == "no"
    with pytest.raises(PeftbenchError, match="trains the base model's own weights"):
        check_quantized_base(name, QuantizationConfig(bits=4))


@pytest.mark.parametrize("name", [name for name in ADAPTERS if TABLE[name].tasks])
def test_kbit_base_claims_on_a_tiny_4bit_llama(tiny_llama_lm, name):
    """'yes': trains, through PEFT's bitsandbytes layers where it wraps the base's layers; 'no PEFT layer':
    PEFT wraps the 4-bit layers in its plain layers, or the method fails on them."""
    base = _kbit_base(tiny_llama_lm)
    assert type(base.model.layers[0].mlp.up_proj).__name__ == "Linear4bit"
    context = method_context(TASKS.get("causal_lm"), base, str(tiny_llama_lm), num_training_steps=4)
    try:
        prepared = prepare_model(base, _entry(name), context)
        _trains(prepared, "causal_lm")
    except (PeftbenchError, RuntimeError) as exc:
        assert TABLE[name].kbit_base == "no PEFT layer", f"{name} fails on a 4-bit base: {exc}"
        return
    wrappers = _kbit_wrappers(prepared)
    if TABLE[name].kbit_base == "yes":
        assert all(".bnb" in path for path in wrappers), wrappers
        prompt = isinstance(prepared.peft_config["default"], PromptLearningConfig)
        assert wrappers or prompt, f"{name} wraps no 4-bit layer"
    else:
        assert TABLE[name].kbit_base == "no PEFT layer"
        assert not any(".bnb" in path for path in wrappers), wrappers


def test_the_methods_page_shows_the_derived_table():
    text = DOCS.read_text()
    shown = re.search(r"<!-- capabilities -->\n(.*?)<!-- /capabilities -->", text, re.S)
    assert shown, "docs/methods.md lost its <!-- capabilities --> markers"
    assert shown.group(1) == capabilities.markdown(), (
        "docs/methods.md is out of date; paste the output of: PYTHONPATH=src python -c "
        "'from peftbench.cli.capabilities import markdown; print(markdown(), end=\"\")'"
    )


def test_peftbench_methods_shows_and_writes_the_capabilities():
    from typer.testing import CliRunner

    from peftbench.cli import app

    shown = CliRunner().invoke(app, ["methods", "--json", "-"])
    assert shown.exit_code == 0, shown.output
    lora = next(m for m in json.loads(shown.output)["methods"] if m["name"] == "lora")
    assert lora["saved_as"] == "adapter"  # the fields the command had before are still there
    expected = {"tasks": ["causal_lm", "classification", "generation"], "merges": True, "kbit_base": "yes"}
    assert lora["capabilities"] | expected == lora["capabilities"]
    table = CliRunner().invoke(app, ["methods"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "bench merged" in table.output


def test_the_table_covers_every_registered_method():
    assert list(TABLE) == list(METHODS)
    assert all(row.ships == capabilities.SHIPS[METHODS.get(row.method).saved_as] for row in TABLE.values())
