"""Evaluation decoding: the configured options reach model.generate."""

import pytest
from transformers import AutoModelForCausalLM

from peftbench.config.config import GenerationConfig
from peftbench.models import models
from peftbench.tasks.decoding import decode_options, generate

PAPER = {"num_beams": 10, "length_penalty": 0.8, "no_repeat_ngram_size": 4}  # the LoRA paper's E2E decoding


def test_beam_length_penalty_and_no_repeat_ngrams_reach_generate(tiny_gpt2):
    tokenizer = models.load_tokenizer(models.resolve(str(tiny_gpt2)))
    options = decode_options(GenerationConfig(**PAPER), tokenizer)
    assert {k: options[k] for k in PAPER} == PAPER
    assert "length_penalty" not in decode_options(GenerationConfig(num_beams=10), tokenizer)
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2)
    config = GenerationConfig(**PAPER, max_new_tokens=5, batch_size=2)
    generated = generate(model, tokenizer, [[5, 6, 7], [8, 9]], config, "fp32", False, seed=0)
    assert len(generated.texts) == 2 and all(n <= 5 for n in generated.token_counts)


def test_length_penalty_without_beams_is_refused():
    with pytest.raises(
        ValueError, match="length_penalty applies to beam search only; set generation.num_beams"
    ):
        GenerationConfig(length_penalty=0.8)
