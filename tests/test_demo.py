import pytest

from peftbench.execution.demo import DEMOS, QUICK, demo_config
from peftbench.tasks.classification import load_labelled


def _training_tokens(config) -> float:
    """An upper bound on the tokens one method trains on: rows x epochs x max_length."""
    rows = config.data.max_train_samples or 10**6
    return rows * config.training.epochs * config.data.max_length


@pytest.mark.parametrize("name", QUICK)
def test_quick_demo_is_a_smaller_copy_of_the_full_one(name, tmp_path):
    full, quick = demo_config(name, False, str(tmp_path)), demo_config(name, True, str(tmp_path))
    assert quick.name != full.name
    assert _training_tokens(quick) < _training_tokens(full)
    assert {m.method for m in quick.methods} <= {m.method for m in full.methods}
    assert len(quick.methods) < len(full.methods) and len(full.methods) >= 3


def test_the_classification_demo_names_the_condition_among_four(tmp_path):
    """The task is a config choice (label_column and keep_rows), on the packaged reviews."""
    splits, names, _ = load_labelled(demo_config("classification", True, str(tmp_path)).data)
    assert names == ["Acne", "Birth Control", "Depression", "Pain"]
    assert (len(splits["train"]) + len(splits["validation"]), len(splits["test"])) == (196, 136)


@pytest.mark.parametrize("name", DEMOS)
def test_every_full_demo_compares_at_least_three_trained_methods(name, tmp_path):
    assert len(demo_config(name, False, str(tmp_path)).methods) >= 3
