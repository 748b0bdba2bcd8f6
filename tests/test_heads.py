"""Every method trains the task head, whatever the architecture calls it (tiny random models, in-process)."""

import copy
import dataclasses

import pytest
import torch
from peft import PeftModel
from peft.utils.other import ModulesToSaveWrapper
from transformers import (
    AutoModelForSequenceClassification,
    BartConfig,
    BertConfig,
    DistilBertConfig,
    LlamaConfig,
    RobertaConfig,
)

from peftbench.config.config import MethodConfig
from peftbench.measure.measure import count_parameters
from peftbench.methods import prepare_model
from peftbench.tasks import TASKS, method_context

TINY = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}
SHARED = {"vocab_size": 40, "max_position_embeddings": 64, "pad_token_id": 1}

# The head each architecture has, written out by hand: an independent check of the code's own definition.
ARCHITECTURES = {
    "bart": (
        lambda: BartConfig(
            d_model=16,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            bos_token_id=0,
            eos_token_id=2,
            **SHARED,
        ),
        ("classification_head",),
    ),
    "distilbert": (
        lambda: DistilBertConfig(dim=16, n_layers=2, n_heads=2, hidden_dim=32, **SHARED),
        ("pre_classifier", "classifier"),
    ),
    "roberta": (lambda: RobertaConfig(**TINY, **SHARED), ("classifier",)),
    "llama": (lambda: LlamaConfig(**TINY, num_key_value_heads=2, **SHARED), ("score",)),
    "bert": (lambda: BertConfig(**TINY, **SHARED), ("classifier", "bert.pooler")),
}
METHODS = [
    {"method": "full"},
    {"method": "freeze", "frozen_layers": 1},
    {"method": "bitfit"},
    {"method": "head"},
    {"method": "lora", "r": 2, "target_modules": "all-linear"},
    {"method": "ia3"},
]
# PEFT knows no default IA3 targets for DistilBERT.
DISTILBERT_IA3 = {"target_modules": ["q_lin", "v_lin", "lin2"], "feedforward_modules": ["lin2"]}


def _model(arch: str):
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(ARCHITECTURES[arch][0]())


def _batch() -> dict:
    ids = torch.tensor([[0, 5, 6, 7, 8, 2], [0, 9, 10, 11, 12, 2]])  # BART needs the same number of EOS (2)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor([0, 1])}


def _prepare(model, entry: dict):
    context = method_context(TASKS.get("classification"), model, "unused", num_training_steps=4)
    return prepare_model(model, MethodConfig(**entry), context)


def _head(prepared, name: str) -> list[torch.nn.Parameter]:
    inner = prepared.get_base_model() if isinstance(prepared, PeftModel) else prepared
    return [p for p in inner.get_submodule(name).parameters() if p.requires_grad]


@pytest.mark.parametrize("entry", METHODS, ids=lambda e: e["method"])
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_method_trains_the_whole_head(arch, entry):
    model = _model(arch)
    head_names = ARCHITECTURES[arch][1]
    sizes = {name: sum(p.numel() for p in model.get_submodule(name).parameters()) for name in head_names}
    prepared = _prepare(
        model, entry | (DISTILBERT_IA3 if (arch, entry["method"]) == ("distilbert", "ia3") else {})
    )
    for name in head_names:
        assert sum(p.numel() for p in _head(prepared, name)) == sizes[name], f"{name} not fully trainable"
    before = {name: [p.detach().clone() for p in _head(prepared, name)] for name in head_names}
    trainable = [p for p in prepared.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.5)
    prepared.train()
    prepared(**_batch()).loss.backward()
    optimizer.step()
    for name in head_names:
        changed = [not torch.equal(a, b) for a, b in zip(before[name], _head(prepared, name), strict=True)]
        assert all(changed), f"{name} did not change after one step"


@pytest.mark.parametrize("entry", METHODS[-2:], ids=lambda e: e["method"])
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_peft_trainable_count_matches_peft_with_the_head(arch, entry):
    extra = DISTILBERT_IA3 if (arch, entry["method"]) == ("distilbert", "ia3") else {}
    prepared = _prepare(_model(arch), entry | extra)
    trainable, total = prepared.get_nb_trainable_parameters()
    counted = count_parameters(prepared)
    assert counted["trainable_params"] == trainable and counted["total_params"] == total


def test_options_are_not_mutated():
    options = {"method": "lora", "r": 2, "modules_to_save": ["classifier"], "target_modules": ["query"]}
    entry = MethodConfig(**options)
    snapshot = copy.deepcopy(entry.model_dump())
    listed = entry.model_extra["modules_to_save"]
    _prepare(_model("bert"), options)
    prepare_model(
        _model("bert"),
        entry,
        method_context(TASKS.get("classification"), _model("bert"), "unused", 4),
    )
    assert entry.model_dump() == snapshot
    assert listed == ["classifier"] and options["modules_to_save"] == ["classifier"]


def _wrapped(prepared) -> set[str]:
    inner = prepared.get_base_model()
    return {name for name, module in inner.named_modules() if isinstance(module, ModulesToSaveWrapper)}


def test_distilberts_head_is_both_fresh_layers():
    """DistilBertForSequenceClassification adds pre_classifier and classifier on top of the pretrained
    body: neither is in a DistilBERT checkpoint, so both are head."""
    model = _model("distilbert")
    assert method_context(TASKS.get("classification"), model, "unused", 4).head_modules == (
        "pre_classifier",
        "classifier",
    )


@pytest.mark.parametrize("head", [("pre_classifier", "classifier"), ("classifier",)])
def test_lora_wraps_exactly_the_head_modules_named_not_every_name_ending_alike(head):
    """PEFT matches modules_to_save as string suffixes ('classifier' ends 'pre_classifier') and adds
    'classifier' itself for classification; only the modules the head definition names are trained."""
    model = _model("distilbert")
    layer = {name: sum(p.numel() for p in model.get_submodule(name).parameters()) for name in head}
    context = method_context(TASKS.get("classification"), model, "unused", 4)
    context = dataclasses.replace(context, head_modules=head)
    prepared = prepare_model(model, MethodConfig(method="lora", r=2, target_modules=["q_lin"]), context)
    assert _wrapped(prepared) == set(head)
    lora = 2 * 2 * (16 * 2)  # two layers' q_lin, A (2x16) and B (16x2)
    trainable, total = prepared.get_nb_trainable_parameters()
    assert trainable == lora + sum(layer.values())  # 128 + 272 + 34, or 128 + 34
    assert count_parameters(prepared)["trainable_params"] == trainable
    pre_classifier = prepared.get_base_model().get_submodule("pre_classifier")
    assert any(p.requires_grad for p in pre_classifier.parameters()) == ("pre_classifier" in head)
