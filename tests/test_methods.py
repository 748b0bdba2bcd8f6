import copy

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForSequenceClassification

from peftbench.config.config import MethodConfig
from peftbench.errors import PeftbenchError
from peftbench.measure.measure import count_parameters
from peftbench.methods import METHODS, head_parameters_in, prepare_model
from peftbench.tasks import TASKS, method_context

PEFT_CASES = [
    {"method": "lora", "r": 4},
    {"method": "lora", "r": 4, "target_modules": "all-linear", "use_dora": True},
    {"method": "lora", "r": 4, "use_rslora": True, "alpha": 8, "dropout": 0.1},
    {"method": "ia3"},
    {"method": "loha", "r": 2, "target_modules": ["query", "value"]},
    {"method": "lokr", "r": 2, "target_modules": ["query", "value"]},
    {"method": "vera", "r": 4, "target_modules": ["query", "value"]},
    {"method": "adalora", "init_r": 4, "target_r": 2, "target_modules": ["query", "value"]},
    {"method": "prompt_tuning", "num_virtual_tokens": 4},
    {
        "method": "prompt_tuning",
        "num_virtual_tokens": 4,
        "prompt_tuning_init": "TEXT",
        "prompt_tuning_init_text": "good or bad",
    },
    {"method": "prefix_tuning", "num_virtual_tokens": 4},
]


def _load(path):
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)


def _prepare(path, entry: dict):
    model = _load(path)
    context = method_context(TASKS.get("classification"), model, str(path), num_training_steps=10)
    return prepare_model(model, MethodConfig(**entry), context)


@pytest.mark.parametrize("entry", PEFT_CASES, ids=lambda e: "-".join(str(v) for v in e.values())[:40])
def test_peft_trainable_count_matches_peft(tiny_bert, entry):
    model = _prepare(tiny_bert, entry)
    peft_trainable, peft_total = model.get_nb_trainable_parameters()
    counted = count_parameters(model)
    assert counted["trainable_params"] == peft_trainable > 0
    assert counted["total_params"] == peft_total
    head = [n for n, p in model.named_parameters() if p.requires_grad and "classifier" in n]
    assert head, "the classification head must be trained by every method"


def _head_size(model) -> int:
    return sum(p.numel() for p in model.classifier.parameters())


@pytest.mark.parametrize(
    ("model_fixture", "head_names"),
    [("tiny_bert", ("classifier", "bert.pooler")), ("tiny_llama", ("score",))],
)
def test_weight_selection_methods(request, model_fixture, head_names):
    path = request.getfixturevalue(model_fixture)
    reference = _load(path)
    head = sum(p.numel() for name in head_names for p in reference.get_submodule(name).parameters())
    total = sum(p.numel() for p in reference.parameters())
    biases = sum(
        p.numel()
        for n, p in reference.named_parameters()
        if n.endswith(".bias") and not n.startswith(head_names)
    )

    assert count_parameters(_prepare(path, {"method": "full"}))["trainable_params"] == total
    assert count_parameters(_prepare(path, {"method": "head"}))["trainable_params"] == head
    assert count_parameters(_prepare(path, {"method": "bitfit"}))["trainable_params"] == head + biases
    frozen = _prepare(path, {"method": "freeze", "frozen_layers": 1})
    trainable = {n for n, p in frozen.named_parameters() if p.requires_grad}
    assert not any("embed" in n or ".0." in n for n in trainable)
    assert any(".1." in n for n in trainable)


def test_lora_on_llama_uses_default_targets(tiny_llama):
    model = _prepare(tiny_llama, {"method": "lora", "r": 2})
    assert count_parameters(model)["trainable_params"] == model.get_nb_trainable_parameters()[0]


def test_adapter_round_trips_through_peft(tiny_bert, tmp_path):
    model = _prepare(tiny_bert, {"method": "lora", "r": 4})
    model.save_pretrained(tmp_path / "adapter")
    loaded = PeftModel.from_pretrained(_load(tiny_bert), tmp_path / "adapter")
    inputs = {"input_ids": torch.tensor([[2, 5, 6, 3]])}
    model.eval()
    loaded.eval()
    torch.testing.assert_close(model(**inputs).logits, loaded(**inputs).logits)


def test_registry_suggests_closest_method():
    with pytest.raises(PeftbenchError, match="did you mean 'lora'"):
        METHODS.get("lorra")


def test_unknown_peft_option_suggests(tiny_bert):
    with pytest.raises(PeftbenchError, match="did you mean 'lora_alpha'"):
        _prepare(tiny_bert, {"method": "lora", "lora_alpah": 8})


def test_target_modules_matching_nothing(tiny_bert):
    with pytest.raises(PeftbenchError, match="match no module.*query"):
        _prepare(tiny_bert, {"method": "lora", "target_modules": ["q_proj", "v_proj"]})


def test_freeze_more_layers_than_model_has(tiny_bert):
    with pytest.raises(PeftbenchError, match="frozen_layers=5 but the model has 2 layers"):
        _prepare(tiny_bert, {"method": "freeze", "frozen_layers": 5})


def test_method_that_does_not_fit(tiny_bert):
    # adaption_prompt is defined for Llama-style attention only.
    with pytest.raises(
        PeftbenchError,
        match=r"^method 'adaption_prompt' does not fit model BertForSequenceClassification: "
        r".*\bmodel type\b.*'bert'.*; pick another method",  # PEFT's own reason, passed through
    ) as raised:
        _prepare(tiny_bert, {"method": "adaption_prompt", "adapter_len": 2, "adapter_layers": 1})
    assert "\n" not in str(raised.value) and isinstance(raised.value.__cause__, ValueError)


def test_methods_do_not_touch_the_shared_base(tiny_bert):
    base = _load(tiny_bert)
    before = copy.deepcopy(base.state_dict())
    prepare_model(
        copy.deepcopy(base),
        MethodConfig(method="lora", r=2),
        method_context(TASKS.get("classification"), base, str(tiny_bert), 1),
    )
    for name, tensor in base.state_dict().items():
        assert torch.equal(tensor, before[name])


LM_CASES = [
    {"method": "full"},
    {"method": "freeze", "frozen_layers": 1},
    {"method": "head"},
    {"method": "lora", "r": 2, "target_modules": "all-linear"},
    {"method": "ia3"},
    {
        "method": "prompt_tuning",
        "num_virtual_tokens": 3,
        "prompt_tuning_init": "TEXT",
        "prompt_tuning_init_text": "good drug",
    },
    {"method": "prefix_tuning", "num_virtual_tokens": 3},
]


@pytest.mark.parametrize("entry", LM_CASES, ids=lambda e: e["method"])
def test_methods_train_a_causal_lm(tiny_llama_lm, entry):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_lm)
    context = method_context(TASKS.get("causal_lm"), model, str(tiny_llama_lm), num_training_steps=4)
    prepared = prepare_model(model, MethodConfig(**entry), context)
    ids = torch.randint(4, 16, (2, 6))
    prepared(input_ids=ids, labels=ids).loss.backward()
    trained = [p for p in prepared.parameters() if p.requires_grad]
    assert trained and all(p.grad is not None for p in trained)


def test_lm_head_method_trains_only_the_output_layer(tiny_llama_lm):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_lm)
    context = method_context(TASKS.get("causal_lm"), model, str(tiny_llama_lm), num_training_steps=4)
    prepared = prepare_model(model, MethodConfig(method="head"), context)
    assert [n for n, p in prepared.named_parameters() if p.requires_grad] == ["lm_head.weight"]


def test_bitfit_on_a_model_without_biases_says_so(tiny_llama_lm):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_lm)
    context = method_context(TASKS.get("causal_lm"), model, str(tiny_llama_lm), num_training_steps=4)
    with pytest.raises(PeftbenchError, match="leaves nothing to train"):
        prepare_model(model, MethodConfig(method="bitfit"), context)


def _lm(path):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    auto = (
        AutoModelForSeq2SeqLM if AutoConfig.from_pretrained(path).is_encoder_decoder else AutoModelForCausalLM
    )
    torch.manual_seed(0)
    return auto.from_pretrained(path)


# Per model: the embedding tables that must freeze, and each stack of blocks (written out by hand).
FREEZE_CASES = {
    "tiny_gpt2": (("transformer.wte", "transformer.wpe"), ("transformer.h",)),
    "tiny_llama_lm": (("model.embed_tokens",), ("model.layers",)),
    "tiny_t5": (("shared",), ("encoder.block", "decoder.block")),
    "tiny_bert": (("bert.embeddings",), ("bert.encoder.layer",)),
}


@pytest.mark.parametrize("model_fixture", list(FREEZE_CASES))
def test_freeze_freezes_embeddings_and_first_blocks_of_every_stack(request, model_fixture):
    path = request.getfixturevalue(model_fixture)
    task = TASKS.get("classification" if model_fixture == "tiny_bert" else "causal_lm")
    model = _load(path) if model_fixture == "tiny_bert" else _lm(path)
    context = method_context(task, model, str(path), num_training_steps=4)
    prepared = prepare_model(model, MethodConfig(method="freeze", frozen_layers=1), context)
    embeddings, stacks = FREEZE_CASES[model_fixture]
    for name in embeddings:
        assert not any(p.requires_grad for p in prepared.get_submodule(name).parameters()), name
    for stack in stacks:
        blocks = prepared.get_submodule(stack)
        assert not any(p.requires_grad for p in blocks[0].parameters()), f"{stack}.0 trains"
        assert all(p.requires_grad for p in blocks[1].parameters()), f"{stack}.1 is frozen"


def test_head_method_counts_a_tied_head_once(tiny_gpt2):
    model = _lm(tiny_gpt2)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    context = method_context(TASKS.get("causal_lm"), model, str(tiny_gpt2), num_training_steps=4)
    prepared = prepare_model(model, MethodConfig(method="head"), context)
    assert count_parameters(prepared)["trainable_params"] == model.get_input_embeddings().weight.numel()
    assert len(head_parameters_in(prepared, context.head_modules)) == 1


@pytest.mark.parametrize(
    "targets",
    [["attention.self.query"], ["attention.self.query", "value"], r".*\.layer\.1\..*\.(query|key)"],
    ids=["dotted", "dotted-list", "regex"],
)
def test_target_modules_accepted_as_peft_accepts_them(tiny_bert, targets):
    model = _prepare(tiny_bert, {"method": "lora", "r": 2, "target_modules": targets})
    lora = {n.split(".lora_A")[0] for n, _ in model.named_parameters() if ".lora_A." in n}
    assert lora and all(n.endswith(("query", "key", "value")) for n in lora)


def test_target_modules_regex_matching_nothing_fails_fast(tiny_bert):
    with pytest.raises(PeftbenchError, match="match no module"):
        _prepare(tiny_bert, {"method": "lora", "target_modules": r"nothing\.here"})


def test_method_that_cannot_train_the_fresh_head_is_refused(tiny_bert):
    with pytest.raises(PeftbenchError, match="leaves the fresh task head .*classifier.* untrained"):
        _prepare(
            tiny_bert,
            {"method": "trainable_tokens", "token_indices": [5], "target_modules": ["word_embeddings"]},
        )
