"""inspect's memory settings against the real thing: optimizer states as the Trainer's optimizers allocate
them, 4/8-bit weights as bitsandbytes stores them, activations with gradient checkpointing."""

import json

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    BitsAndBytesConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForSequenceClassification,
)
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.config.config import MethodConfig, QuantizationConfig, TrainingConfig
from peftbench.efficiency import optimizers
from peftbench.efficiency.activations import saved_activations
from peftbench.efficiency.estimate import inspect_method, meta_model
from peftbench.efficiency.memory_options import MemoryOptions
from peftbench.efficiency.weights import quantised_weights, weight_bytes
from peftbench.errors import PeftbenchError
from peftbench.models.models import ModelSource
from peftbench.tasks import TASKS

runner = CliRunner()
LORA = MethodConfig(method="lora", r=8, target_modules=["q_proj", "v_proj"])
WIDE = {"hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 4, "num_key_value_heads": 4}


@pytest.fixture(scope="module")
def llama_no_pad(tmp_path_factory):
    """A 4-layer Llama config with no pad token (as most decoder LLMs ship), matrices over 4,096 elements."""
    directory = tmp_path_factory.mktemp("llama-no-pad")
    config = LlamaConfig(
        vocab_size=64, num_hidden_layers=4, max_position_embeddings=64, eos_token_id=2, **WIDE
    )
    assert config.pad_token_id is None
    torch.manual_seed(0)
    LlamaForSequenceClassification(config).save_pretrained(directory)
    return directory


def _state_bytes(optimizer) -> int:
    """Every tensor the optimizer holds in its state, each storage once (bitsandbytes shares its maps)."""
    storages = {
        t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
        for state in optimizer.state.values()
        for t in state.values()
        if isinstance(t, torch.Tensor) and t.dim()
    }
    return sum(storages.values())


@pytest.mark.parametrize("optim", ["adamw_torch_fused", "adamw_8bit", "paged_adamw_8bit", "adafactor"])
def test_optimizer_state_equals_what_the_trainers_optimizer_allocates(llama_no_pad, optim, tmp_path):
    from transformers import Trainer, TrainingArguments

    model = AutoModelForSequenceClassification.from_pretrained(llama_no_pad)
    trainable = [p for p in model.parameters() if p.requires_grad]
    args = TrainingArguments(output_dir=str(tmp_path), optim=TrainingConfig(optim=optim).optim, use_cpu=True)
    optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    optimizer = optimizer_cls(trainable, **kwargs)
    for p in trainable:
        p.grad = torch.ones_like(p)
    optimizer.step()
    assert optimizers.state_bytes(trainable, optim) == _state_bytes(optimizer)


def test_eight_bit_and_adafactor_states_are_smaller_than_adamw(llama_no_pad):
    task = TASKS.get("classification")
    base = meta_model(ModelSource(str(llama_no_pad)), task)
    full = MethodConfig(method="full")
    found = {
        optim: inspect_method(
            base, task, full, "", 2, 16, options=MemoryOptions(optim=optim)
        ).memory.optimizer
        for optim in ("adamw_torch_fused", "adamw_8bit", "adafactor")
    }
    trainable = sum(p.numel() for p in base.parameters())
    assert found["adamw_torch_fused"] == 8 * trainable
    assert found["adafactor"] < found["adamw_8bit"] < 0.35 * found["adamw_torch_fused"]


def _real_quantised_bytes(model) -> int:
    """Parameters as stored, plus bitsandbytes' scales: the 4-bit quant state or the 8-bit row scales."""
    total = 0
    for p in model.parameters():
        total += p.numel() * p.element_size()
        state = getattr(p, "quant_state", None)
        if state is not None:
            total += state.absmax.numel() * state.absmax.element_size()
            if state.nested:
                total += state.state2.absmax.numel() * state.state2.absmax.element_size()
        if getattr(p, "SCB", None) is not None:
            total += p.SCB.numel() * p.SCB.element_size()
    return total


@pytest.mark.parametrize(
    ("quantization", "loaded"),
    [
        (QuantizationConfig(bits=4), BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_use_double_quant=True)),
        (
            QuantizationConfig(bits=4, double_quant=False),
            BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_use_double_quant=False),
        ),
        (QuantizationConfig(bits=8), BitsAndBytesConfig(load_in_8bit=True)),
    ],
)
def test_quantised_weight_bytes_match_a_real_bitsandbytes_load(llama_no_pad, quantization, loaded):
    task = TASKS.get("classification")
    base = meta_model(ModelSource(str(llama_no_pad)), task)
    estimate = weight_bytes(base, quantization, quantised_weights(base))
    real = AutoModelForSequenceClassification.from_pretrained(llama_no_pad, quantization_config=loaded)
    assert estimate == _real_quantised_bytes(real)
    assert estimate < 0.5 * weight_bytes(base, None, set())


@pytest.fixture(scope="module")
def gpt2_and_bf16_llama(tmp_path_factory):
    """GPT-2 (Conv1D layers, which bitsandbytes converts too) and a Llama stored in bf16 (whose embeddings
    and norms PEFT's k-bit preparation casts to fp32)."""
    gpt2, llama = tmp_path_factory.mktemp("gpt2"), tmp_path_factory.mktemp("llama-bf16")
    GPT2LMHeadModel(
        GPT2Config(vocab_size=64, n_positions=64, n_embd=128, n_layer=2, n_head=4)
    ).save_pretrained(gpt2)
    config = LlamaConfig(
        vocab_size=64, num_hidden_layers=2, max_position_embeddings=64, eos_token_id=2, **WIDE
    )
    LlamaForSequenceClassification(config).to(torch.bfloat16).save_pretrained(llama)
    return {"causal_lm": gpt2, "classification": llama}


@pytest.mark.parametrize("task_name", ["causal_lm", "classification"])
@pytest.mark.parametrize("bits", [4, 8])
def test_quantised_weight_bytes_match_the_prepared_model_training_gets(gpt2_and_bf16_llama, task_name, bits):
    from peftbench.models import quantization as kbit

    directory, quantization = gpt2_and_bf16_llama[task_name], QuantizationConfig(bits=bits)
    task = TASKS.get(task_name)
    base = meta_model(ModelSource(str(directory)), task)
    auto = AutoModelForCausalLM if task_name == "causal_lm" else AutoModelForSequenceClassification
    real = auto.from_pretrained(directory, **kbit.load_kwargs(quantization))
    assert weight_bytes(base, quantization, quantised_weights(base)) == _real_quantised_bytes(
        kbit.prepare(real, quantization)
    )


def test_quantised_inspect_refuses_full_and_counts_lora_on_four_bits(llama_no_pad):
    task = TASKS.get("classification")
    base = meta_model(ModelSource(str(llama_no_pad)), task)
    four = MemoryOptions(quantization=QuantizationConfig(bits=4))
    with pytest.raises(PeftbenchError, match="method 'full' trains the base model's own weights"):
        inspect_method(base, task, MethodConfig(method="full"), "", 2, 16, options=four)
    plain, qlora = (
        inspect_method(base, task, LORA, "", 2, 16, options=o).memory for o in (MemoryOptions(), four)
    )
    assert qlora.weights < 0.5 * plain.weights
    assert (qlora.gradients, qlora.optimizer, qlora.activations) == (
        plain.gradients,
        plain.optimizer,
        plain.activations,
    )


def test_checkpointing_keeps_block_inputs_and_one_block(llama_no_pad):
    task = TASKS.get("classification")
    base = meta_model(ModelSource(str(llama_no_pad)), task)
    saved = saved_activations(base.train(), task.example_batch(8, 32))
    assert len(saved.blocks) == 4 and len(set(saved.blocks)) == 1
    block_input = 8 * 32 * WIDE["hidden_size"] * 4
    assert saved.boundaries == 4 * block_input
    assert saved.checkpointed == saved.outside + 4 * block_input + saved.blocks[0]
    full = MethodConfig(method="full")
    plain, checkpointed = (
        inspect_method(base, task, full, "", 8, 32, options=MemoryOptions(gradient_checkpointing=g)).memory
        for g in (False, True)
    )
    assert plain.activations == saved.total and checkpointed.activations == saved.checkpointed
    assert checkpointed.activations < 0.5 * plain.activations


def test_checkpointed_real_forward_saves_what_the_estimate_keeps(llama_no_pad):
    """A real model with gradient checkpointing on: what autograd still saves is what the estimate keeps
    between recomputes: everything outside the blocks, and each block's input (saved by the checkpoint)."""
    task = TASKS.get("classification")
    model = AutoModelForSequenceClassification.from_pretrained(llama_no_pad, pad_token_id=2).train()
    inputs = task.example_batch(8, 32, device="cpu")
    plain = saved_activations(model, inputs)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    seen = saved_activations(model, inputs)
    assert seen.outside == plain.outside and sum(seen.blocks) == plain.boundaries > 0
    assert seen.total + max(plain.blocks) == plain.checkpointed


def test_inspect_a_decoder_classifier_without_pad_token_and_named_rows(llama_no_pad, tmp_path):
    out = tmp_path / "inspect.json"
    arguments = ["inspect", "--model", str(llama_no_pad), "--batch-size", "4", "--seq-len", "16"]
    for method in (
        "lora:r=4:target_modules=[q_proj,v_proj]",
        "lora:r=16:use_dora=true:target_modules=[q_proj]",
    ):
        arguments += ["--method", method]
    result = runner.invoke(
        app, [*arguments, "--optim", "adamw_8bit", "--gradient-checkpointing", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert [m["label"] for m in payload["methods"]] == ["lora r=4 q_proj,v_proj", "lora r=16 use_dora q_proj"]
    assert payload["memory_options"]["optim"] == "adamw_8bit"
    assert payload["memory_options"]["gradient_checkpointing"] is True
    typo = runner.invoke(app, [*arguments, "--optim", "adamw_8bits"])
    assert typo.exit_code == 2 and "did you mean 'adamw_8bit'" in typo.output


def test_inspect_reads_the_memory_settings_of_an_experiment_file(llama_no_pad, reviews_csv, tmp_path):
    import yaml

    experiment = {
        "name": "qlora",
        "model": {"name": str(llama_no_pad), "quantization": {"bits": 4}},
        "data": {"dataset": str(reviews_csv), "max_length": 16},
        "training": {"batch_size": 4, "gradient_checkpointing": True, "optim": "paged_adamw_8bit"},
        "methods": [{"method": "lora", "name": "qlora-r8", "r": 8, "target_modules": ["q_proj", "v_proj"]}],
    }
    path = tmp_path / "qlora.yaml"
    path.write_text(yaml.safe_dump(experiment))
    out = tmp_path / "inspect.json"
    result = runner.invoke(app, ["inspect", "--config", str(path), "--json", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["memory_options"]["quantization"]["bits"] == 4
    assert payload["memory_options"]["optim"] == "paged_adamw_8bit"
    assert payload["methods"][0]["label"] == "qlora-r8" and "qlora-r8" in result.output


def test_probe_fits_larger_batches_with_checkpointing_and_refuses_quantising_on_a_gpu(llama_no_pad):
    import copy

    from peftbench.efficiency import probe

    task = TASKS.get("classification")
    base = meta_model(ModelSource(str(llama_no_pad)), task)

    def largest(options: MemoryOptions, budget: int | None = 64 * 2**20) -> probe.Probe:
        return probe.probe_method(
            lambda: copy.deepcopy(base), task, LORA, "", 64, 4096, budget, "fp32", options
        )

    plain, checkpointed = largest(MemoryOptions()), largest(MemoryOptions(gradient_checkpointing=True))
    assert plain.method == "lora r=8 q_proj,v_proj"
    assert checkpointed.batch_size > 2 * plain.batch_size > 0
    with pytest.raises(PeftbenchError, match="cannot quantise them"):
        largest(MemoryOptions(quantization=QuantizationConfig(bits=4)), budget=None)
