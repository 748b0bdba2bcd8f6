"""The tokenised-data cache: a second load reads the cache and returns the same data; changes miss it."""

import pytest

from peftbench.inputs import datacache
from peftbench.inputs.experiment import build_config
from peftbench.models import models
from peftbench.tasks import TASKS


def _load(config):
    source = models.resolve(config.model.name)
    tokenizer = models.load_tokenizer(source)
    task = TASKS.get(config.task)
    return datacache.load_task_data(config, source, task, tokenizer, models.load_config(source))


@pytest.fixture
def counting(monkeypatch):
    calls = []
    for name in TASKS:
        task = TASKS.get(name)
        original = task.load_data

        def load_data(config, tokenizer, model_config, original=original):
            calls.append(config.task)
            return original(config, tokenizer, model_config)

        monkeypatch.setattr(task, "load_data", load_data)
    return calls


def test_second_load_reads_the_cache_and_returns_the_same_data(experiment, counting):
    config = build_config(experiment)
    first, second = _load(config), _load(config)
    assert counting == ["classification"]  # tokenised once
    assert first.metadata == second.metadata
    for split in ("train", "validation", "test"):
        assert first.splits[split].to_list() == second.splits[split].to_list()


def test_generation_groups_survive_the_cache(tmp_path, tiny_llama_lm, data_to_text_csv, counting):
    raw = {
        "name": "g",
        "task": "generation",
        "model": str(tiny_llama_lm),
        "data": {
            "dataset": str(data_to_text_csv),
            "prompt_template": "{mr}\n",
            "target_column": "ref",
        },
        "generation": {"max_new_tokens": 5},
        "methods": [{"method": "full"}],
        "output_dir": str(tmp_path),
    }
    config = build_config(raw)
    first, second = _load(config), _load(config)
    assert len(counting) == 1 and first.test_references == second.test_references and first.test_references


def test_changed_data_settings_or_files_miss_the_cache(experiment, reviews_csv, counting):
    config = build_config(experiment)
    _load(config)
    experiment["data"]["max_length"] = 8
    _load(build_config(experiment))
    reviews_csv.write_text(reviews_csv.read_text() + "great works,positive\n")
    _load(config)
    assert len(counting) == 3


def test_training_seed_shares_the_entry_and_split_seed_does_not(experiment, counting):
    """The splits depend on data.split_seed only: a second training seed reads the first one's entry."""
    first = _load(build_config({**experiment, "seed": 1}))
    second = _load(build_config({**experiment, "seed": 2}))
    assert counting == ["classification"]
    assert first.splits["test"].to_list() == second.splits["test"].to_list()
    _load(build_config({**experiment, "data": {**experiment["data"], "split_seed": 7}}))
    assert len(counting) == 2
