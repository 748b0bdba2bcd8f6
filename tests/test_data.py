import pytest
from conftest import write_reviews

from peftbench.config import DataConfig
from peftbench.errors import PeftbenchError
from peftbench.tasks.classification import load_labelled as load_splits


def test_local_csv_gets_train_validation_test(reviews_csv):
    splits, names = load_splits(DataConfig(dataset=str(reviews_csv)), seed=1)
    assert names == ["negative", "positive"]
    assert set(splits) == {"train", "validation", "test"}
    assert sum(len(s) for s in splits.values()) == 48
    assert set(splits["train"]["label"]) == {0, 1}


def test_splits_are_reproducible(reviews_csv):
    first, _ = load_splits(DataConfig(dataset=str(reviews_csv)), seed=3)
    second, _ = load_splits(DataConfig(dataset=str(reviews_csv)), seed=3)
    assert first["test"]["text"] == second["test"]["text"]


def test_separate_test_file_is_used_as_is(reviews_csv, tmp_path):
    test_file = tmp_path / "test.tsv"
    test_file.write_text("text\tlabel\ngood drug\tpositive\nbad pain\tnegative\n")
    splits, _ = load_splits(DataConfig(dataset=str(reviews_csv), test_file=str(test_file)), seed=0)
    assert splits["test"]["text"] == ["good drug", "bad pain"]
    assert len(splits["train"]) + len(splits["validation"]) == 48


def test_missing_column(reviews_csv):
    with pytest.raises(PeftbenchError, match=r"lacks column\(s\) \['review'\]"):
        load_splits(DataConfig(dataset=str(reviews_csv), text_column="review"), seed=0)


def test_labels_outside_label_set(reviews_csv):
    with pytest.raises(PeftbenchError, match="outside the label set"):
        load_splits(DataConfig(dataset=str(reviews_csv), label_names=["positive", "neutral"]), seed=0)


def test_empty_after_data_fraction(tmp_path):
    path = tmp_path / "small.csv"
    write_reviews(path, count=6)
    with pytest.raises(PeftbenchError, match="empty after data_fraction"):
        load_splits(DataConfig(dataset=str(path), data_fraction=0.01), seed=0)


def test_max_samples_caps_splits(reviews_csv):
    splits, _ = load_splits(
        DataConfig(dataset=str(reviews_csv), max_train_samples=5, max_eval_samples=3), seed=0
    )
    assert (len(splits["train"]), len(splits["test"])) == (5, 3)


def test_builtin_drugscom_is_real_and_offline():
    splits, names = load_splits(DataConfig(dataset="drugscom"), seed=0)
    assert names == ["negative", "neutral", "positive"]
    assert len(splits["train"]) + len(splits["validation"]) == 600
    assert len(splits["test"]) == 379
