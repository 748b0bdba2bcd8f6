"""Memory options in training: gradient checkpointing, the Trainer's optimizer, a 4/8-bit base (bitsandbytes,
which runs on CPUs too)."""

import json
import logging

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

from peftbench.config.config import MethodConfig, TrainingConfig
from peftbench.errors import PeftbenchError
from peftbench.inputs.experiment import build_config
from peftbench.methods import prepare_model
from peftbench.tasks import TASKS, method_context
from peftbench.training import training

LORA = MethodConfig(method="lora", r=4, target_modules=["q_proj", "v_proj"])


def _trainer(tiny_llama, tmp_path, **settings):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_llama, num_labels=2)
    model = prepare_model(model, LORA, method_context(TASKS.get("classification"), model, str(tiny_llama), 2))
    rows = torch.Generator().manual_seed(1)
    data = Dataset.from_dict(
        {
            "input_ids": torch.randint(5, 17, (8, 12), generator=rows).tolist(),
            "label": [0, 1] * 4,
        }
    )
    config = TrainingConfig(
        epochs=1, batch_size=4, learning_rate=1e-2, precision="fp32", logging_steps=1, **settings
    )
    parts = training.TrainerParts(
        DataCollatorWithPadding(AutoTokenizer.from_pretrained(tiny_llama)), ("input_ids", "label")
    )
    return training.make_trainer(model, None, config, tmp_path / str(settings), 0, parts, data)


def _losses(trainer) -> list[float]:
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_gradient_checkpointing_trains_to_the_same_loss(tiny_llama, tmp_path):
    plain = _trainer(tiny_llama, tmp_path, optim="adamw_torch")
    checkpointed = _trainer(tiny_llama, tmp_path, optim="adamw_torch", gradient_checkpointing=True)
    assert checkpointed.args.activation_checkpointing_kwargs == {"use_reentrant": False}
    expected, found = _losses(plain), _losses(checkpointed)
    assert checkpointed.model.base_model.model.is_activation_checkpointing
    assert not plain.model.base_model.model.is_activation_checkpointing
    assert len(found) == 2 and found == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("optim", "expected"),
    [
        ("adafactor", "transformers.optimization.Adafactor"),
        ("adamw_8bit", "bitsandbytes.optim.adamw.AdamW"),
        ("paged_adamw_8bit", "bitsandbytes.optim.adamw.AdamW"),
        ("adamw_torch_fused", "torch.optim.adamw.AdamW"),
    ],
)
def test_optim_reaches_the_trainer(tiny_llama, tmp_path, optim, expected):
    trainer = _trainer(tiny_llama, tmp_path, optim=optim)
    assert trainer.args.optim == optim
    optimizer = trainer.create_optimizer()
    assert f"{type(optimizer).__module__}.{type(optimizer).__name__}" == expected
    if "8bit" in optim:
        assert optimizer.args.optim_bits == 8 and optimizer.is_paged == optim.startswith("paged")


def test_unknown_optimizer_is_one_line_with_a_suggestion(experiment):
    experiment["training"]["optim"] = "adamw_8bits"
    with pytest.raises(PeftbenchError, match="training.optim.*did you mean 'adamw_8bit'"):
        build_config(experiment)


def _quantised(experiment, tiny_llama, bits: int, method: dict) -> dict:
    experiment["model"] = {"name": str(tiny_llama), "quantization": {"bits": bits}}
    experiment["methods"] = [method]
    experiment["baselines"] = False
    experiment["training"] |= {"precision": "fp32", "optim": "adamw_torch"}
    return experiment


@pytest.mark.parametrize(
    ("bits", "method", "layer"),
    [
        (4, {"method": "lora", "r": 4, "target_modules": ["q_proj", "v_proj"]}, "Linear4bit"),
        (4, {"method": "lora", "r": 4, "use_dora": True, "target_modules": ["q_proj"]}, "Linear4bit"),
        (8, {"method": "lora", "r": 4, "target_modules": ["q_proj", "v_proj"]}, "Linear8bitLt"),
    ],
)
def test_adapters_train_on_a_quantised_base_on_cpu(experiment, tiny_llama, bits, method, layer):
    from peftbench.inputs.run_inputs import prepare_inputs
    from peftbench.run import runner

    config = training.with_resolved_precision(build_config(_quantised(experiment, tiny_llama, bits, method)))
    inputs = prepare_inputs(config)
    assert type(inputs.base_model.model.layers[0].mlp.up_proj).__name__ == layer
    run_dir = runner.run_method(inputs, config.methods[0])
    result = json.loads((run_dir / "result.json").read_text())
    assert result["model"]["quantization"]["bits"] == bits
    assert result["model"]["quantization"]["library"].startswith("bitsandbytes")
    assert result["history"][0]["train_loss"] > 0 and (run_dir / "adapter").is_dir()
    assert result["interpolation"] is None and "quantised base" in result["interpolation_info"]["reason"]


@pytest.mark.parametrize("method", ["full", "freeze", "bitfit"])
def test_methods_that_train_base_weights_refuse_a_quantised_base(experiment, tiny_llama, method):
    with pytest.raises(PeftbenchError, match=f"method '{method}' trains the base model's own weights"):
        build_config(_quantised(experiment, tiny_llama, 4, {"method": method}))


def test_missing_bitsandbytes_is_one_clear_error(monkeypatch):
    from peftbench.config.config import QuantizationConfig
    from peftbench.models import quantization

    real = quantization.importlib.util.find_spec
    monkeypatch.setattr(
        quantization.importlib.util, "find_spec", lambda name: None if name == "bitsandbytes" else real(name)
    )
    with pytest.raises(PeftbenchError, match="pip install bitsandbytes"):
        quantization.load_kwargs(QuantizationConfig(bits=4))
    assert quantization.load_kwargs(None) == {}


def test_adapters_on_a_4bit_base_still_get_gradients_after_an_evaluation(tiny_llama_lm):
    """bitsandbytes repacks 4-bit weights for a kernel without backward on the first no-grad eval pass on
    CPUs with AVX512-BF16; the flag it reads is set here as such a CPU would, whatever this one has."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from peftbench.config.config import QuantizationConfig
    from peftbench.models import quantization

    settings = QuantizationConfig(bits=4, compute_dtype="fp32")
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_lm, **quantization.load_kwargs(settings))
    four_bit = [m for m in model.modules() if type(m).__name__ == "Linear4bit"]
    for layer in four_bit:
        layer.support_avx512bf16_for_cpu = True
    model = get_peft_model(quantization.prepare(model, settings), LoraConfig(r=4, target_modules=["q_proj"]))
    assert four_bit and not any(layer.support_avx512bf16_for_cpu for layer in four_bit)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    model.eval()
    with torch.no_grad():
        model(input_ids=ids, labels=ids)
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    grads = [p.grad for name, p in model.named_parameters() if "lora_B" in name]  # A gets none while B is 0
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    # and the warning bitsandbytes logs on such CPUs about that kernel does not reach the terminal
    assert logging.getLogger("bitsandbytes.backends.cpu.ops").getEffectiveLevel() == logging.ERROR
