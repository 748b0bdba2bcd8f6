"""Tiny random models and small data files built in-process: no network, seconds per test."""

import random

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Tokenised-data and GGUF caches in a temporary folder, never the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PEFTBENCH_CACHE", str(tmp_path_factory.mktemp("peftbench-cache")))
        yield


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


def _word_tokenizer(directory, specials: dict[str, str], append_eos: bool = False, prepend_bos: bool = False):
    """A whitespace word-level tokenizer over WORDS with the given special tokens (e.g. no pad)."""
    tokens = dict.fromkeys([*specials.values(), *WORDS, ":", "name", "food", "|"])
    vocab = {token: i for i, token in enumerate(tokens)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=specials["unk_token"]))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if append_eos:  # T5-style: the tokenizer ends every sequence with EOS
        eos = specials["eos_token"]
        backend.post_processor = processors.TemplateProcessing(
            single=f"$A {eos}", special_tokens=[(eos, vocab[eos])]
        )
    if prepend_bos:  # Llama-style: every sequence starts with BOS
        bos = specials["bos_token"]
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", special_tokens=[(bos, vocab[bos])]
        )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **specials)
    tokenizer.save_pretrained(directory)
    return tokenizer


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory):
    """GPT-2 style: no pad token at all, only <|endoftext|> (the loader must fall back)."""
    directory = tmp_path_factory.mktemp("tiny-gpt2")
    specials = {"unk_token": "<unk>", "eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>"}
    tokenizer = _word_tokenizer(directory, specials)
    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=16,
        n_layer=2,
        n_head=2,
        n_positions=64,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_llama_lm(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-llama-lm")
    specials = {"unk_token": "<unk>", "pad_token": "<pad>", "eos_token": "</s>", "bos_token": "<s>"}
    tokenizer = _word_tokenizer(directory, specials, prepend_bos=True)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        num_key_value_heads=2,
        **TINY,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-t5")
    specials = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    tokenizer = _word_tokenizer(directory, specials, append_eos=True)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=2,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    T5ForConditionalGeneration(config).save_pretrained(directory)
    return directory


def write_data_to_text(path, meanings: int = 12, references: int = 3, seed: int = 0) -> None:
    """E2E-style rows: each meaning representation appears with several human references."""
    rng = random.Random(seed)
    lines = ["mr,ref"]
    for i in range(meanings):
        mr = f"name : {WORDS[i % len(WORDS)]} | food : {WORDS[(i * 5) % len(WORDS)]}"
        for _ in range(references):
            ref = " ".join([WORDS[i % len(WORDS)], *rng.sample(WORDS, 3), WORDS[(i * 5) % len(WORDS)]])
            lines.append(f"{mr},{ref}")
    path.write_text("\n".join(lines) + "\n")


def write_reviews(path, count: int = 48, seed: int = 0, labels=("negative", "positive")) -> None:
    rng = random.Random(seed)
    lines = ["text,label"]
    for i in range(count):
        label = labels[i % len(labels)]
        mood = ["good", "great", "works"] if label == "positive" else ["bad", "awful", "poor"]
        lines.append(" ".join(rng.choice(mood + ["drug", "pain", "ok"]) for _ in range(6)) + f",{label}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def data_to_text_csv(tmp_path):
    path = tmp_path / "e2e.csv"
    write_data_to_text(path)
    return path


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
