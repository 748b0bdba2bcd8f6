"""Tiny random models and small data files built in-process: no network, seconds per test."""

import random

import pytest
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    LlamaConfig,
    LlamaForSequenceClassification,
)

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "ok", "meh", "drug", "pain", "sleep", "works"]


def _tokenizer(directory):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(vocab)})
    tokenizer.save_pretrained(directory)
    return tokenizer


TINY = {
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 64,
}


def _save_tiny(directory, config_cls, model_cls, **extra):
    """A 2-layer, 16-dim random model with the test tokenizer, saved like a hub checkpoint."""
    tokenizer = _tokenizer(directory)
    config = config_cls(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **TINY, **extra)
    model_cls(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    return _save_tiny(tmp_path_factory.mktemp("tiny-bert"), BertConfig, BertForSequenceClassification)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    return _save_tiny(
        tmp_path_factory.mktemp("tiny-llama"),
        LlamaConfig,
        LlamaForSequenceClassification,
        num_key_value_heads=2,
    )


def write_reviews(path, count: int = 48, seed: int = 0, labels=("negative", "positive")) -> None:
    rng = random.Random(seed)
    lines = ["text,label"]
    for i in range(count):
        label = labels[i % len(labels)]
        mood = ["good", "great", "works"] if label == "positive" else ["bad", "awful", "poor"]
        lines.append(" ".join(rng.choice(mood + ["drug", "pain", "ok"]) for _ in range(6)) + f",{label}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def reviews_csv(tmp_path):
    path = tmp_path / "reviews.csv"
    write_reviews(path)
    return path


@pytest.fixture
def experiment(tiny_bert, reviews_csv, tmp_path):
    """A raw experiment dict (before validation) on the tiny model and data."""
    return {
        "name": "tiny",
        "model": str(tiny_bert),
        "data": {"dataset": str(reviews_csv), "max_length": 16},
        "training": {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "logging_steps": 2},
        "methods": [{"method": "full"}, {"method": "lora", "r": 4, "target_modules": ["query", "value"]}],
        "output_dir": str(tmp_path / "runs"),
    }
