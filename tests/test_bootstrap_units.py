"""Language tasks record each test row's independent unit: its prompt (generation), its document
(causal_lm)."""

import numpy as np
from conftest import WORDS
from transformers import AutoConfig

from peftbench import models
from peftbench.experiment import build_config
from peftbench.tasks import TASKS
from peftbench.tasks.language import UNIT


def _config(model, data_file, tmp_path, **data):
    raw = {
        "name": "t",
        "task": data.pop("task"),
        "model": str(model),
        "data": {"dataset": str(data_file), **data},
        "generation": {"max_new_tokens": 6},
        "methods": [{"method": "full"}],
        "output_dir": str(tmp_path),
    }
    return build_config(raw)


def _load(config):
    source = models.resolve(config.model.name)
    tokenizer = models.load_tokenizer(source)
    model_config = AutoConfig.from_pretrained(source.path)
    return TASKS.get(config.task).load_data(config, tokenizer, model_config), tokenizer


def test_each_test_row_records_its_prompt_as_numbered_in_the_reference_groups(
    tiny_llama_lm, data_to_text_csv, tmp_path
):
    train = tmp_path / "train.csv"
    train.write_text("mr,ref\n" + "".join(f"food : {w} {v},{w} {v}\n" for w in WORDS for v in WORDS[:3]))
    config = _config(
        tiny_llama_lm,
        train,
        tmp_path,
        task="generation",
        prompt_template="{mr} :",
        target_column="ref",
        test_file=str(data_to_text_csv),
    )
    data, _ = _load(config)
    test, groups = data.splits["test"], data.test_references
    assert sorted(set(test[UNIT])) == list(range(len(groups))) == list(range(12))
    for row in test:
        prompt_length = sum(label == -100 for label in row["labels"])
        assert row["input_ids"][:prompt_length] == groups[row[UNIT]]["prompt_ids"]


def test_causal_lm_blocks_record_the_text_their_first_token_comes_from(tiny_gpt2, tmp_path):
    """Blocks cut from one long text share its number, so resampling documents keeps them together."""
    texts = [" ".join(WORDS * 3), "good drug", "", " ".join(WORDS[::-1] * 2), "bad pain works"]
    path = tmp_path / "texts.csv"
    path.write_text("text\n" + "".join(f"{w} {v}\n" for w in WORDS for v in WORDS))
    test = tmp_path / "test.csv"
    test.write_text("text\n" + "".join(f'"{t}"\n' for t in texts))
    config = _config(
        tiny_gpt2, path, tmp_path, task="causal_lm", text_column="text", test_file=str(test), max_length=8
    )
    data, tokenizer = _load(config)
    kept = [t for t in texts if t]  # empty texts are dropped before packing
    lengths = [len(tokenizer(t)["input_ids"]) + 1 for t in kept]  # each text ends with EOS
    starts = np.cumsum([0, *lengths])
    blocks = (starts[-1] // 8) * 8
    expected = [int(np.searchsorted(starts, b, side="right") - 1) for b in range(0, blocks, 8)]
    documents = list(data.splits["test"][UNIT])
    assert documents == expected
    assert documents.count(0) >= 3 and documents.count(2) >= 2  # the long texts span several blocks
