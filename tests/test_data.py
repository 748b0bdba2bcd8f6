"""Splits: named ones used as given, missing ones carved from train (grouped by input, stratified by
label) with data.split_seed; fractions and caps shrink train/validation as whole groups."""

import logging
from collections import Counter

import pytest
from conftest import write_data_to_text, write_reviews
from datasets import Dataset, DatasetDict

from peftbench.config.config import DataConfig
from peftbench.data.data import load_splits
from peftbench.data.splits import GROUP, make_splits, share, share_warning, shrink
from peftbench.errors import PeftbenchError
from peftbench.tasks.classification import load_labelled


def test_local_csv_gets_train_validation_test(reviews_csv):
    splits, names, _ = load_labelled(DataConfig(dataset=str(reviews_csv), split_seed=1))
    assert names == ["negative", "positive"]
    assert set(splits) == {"train", "validation", "test"}
    assert sum(len(s) for s in splits.values()) == 48
    assert set(splits["train"]["label"]) == {0, 1}


def test_splits_are_reproducible(reviews_csv):
    first, _, _ = load_labelled(DataConfig(dataset=str(reviews_csv), split_seed=3))
    second, _, _ = load_labelled(DataConfig(dataset=str(reviews_csv), split_seed=3))
    assert first["test"]["text"] == second["test"]["text"]


def test_separate_test_file_is_used_as_is(reviews_csv, tmp_path):
    test_file = tmp_path / "test.tsv"
    test_file.write_text("text\tlabel\ngood drug\tpositive\nbad pain\tnegative\n")
    splits, _, _ = load_labelled(DataConfig(dataset=str(reviews_csv), test_file=str(test_file)))
    assert splits["test"]["text"] == ["good drug", "bad pain"]
    assert len(splits["train"]) + len(splits["validation"]) == 48


def test_missing_column(reviews_csv):
    with pytest.raises(PeftbenchError, match=r"lacks column\(s\) \['review'\]"):
        load_labelled(DataConfig(dataset=str(reviews_csv), text_column="review"))


def test_labels_outside_label_set(reviews_csv):
    with pytest.raises(PeftbenchError, match="outside the label set"):
        load_labelled(DataConfig(dataset=str(reviews_csv), label_names=["positive", "neutral"]))


def test_keep_rows_drops_a_label_before_carving(tmp_path):
    path = tmp_path / "three.csv"
    write_reviews(path, count=60, labels=("negative", "neutral", "positive"))
    splits, names, _ = load_labelled(
        DataConfig(dataset=str(path), keep_rows={"label": ["negative", "positive"]})
    )
    assert names == ["negative", "positive"]
    assert sum(len(s) for s in splits.values()) == 40
    assert {len(set(s["label"])) for s in splits.values()} == {2}


def test_keep_rows_compares_numbers_as_text_and_names_an_empty_result(tmp_path):
    path = tmp_path / "numbers.csv"
    write_reviews(path, count=30, labels=("1", "2", "3"))
    splits, names, _ = load_labelled(DataConfig(dataset=str(path), keep_rows={"label": [1, 3]}))
    assert names == ["1", "3"] and sum(len(s) for s in splits.values()) == 20
    with pytest.raises(PeftbenchError, match="keep_rows left no rows in the train split"):
        load_labelled(DataConfig(dataset=str(path), keep_rows={"label": ["4"]}))
    with pytest.raises(PeftbenchError, match=r"lacks column\(s\) \['drug'\]"):
        load_labelled(DataConfig(dataset=str(path), keep_rows={"drug": ["x"]}))


def test_empty_after_data_fraction(reviews_csv):
    with pytest.raises(PeftbenchError, match="train split is empty after data_fraction"):
        load_labelled(DataConfig(dataset=str(reviews_csv), data_fraction=0.01))


def test_max_samples_caps_splits(reviews_csv):
    splits, _, _ = load_labelled(
        DataConfig(dataset=str(reviews_csv), max_train_samples=5, max_eval_samples=3)
    )
    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (5, 3, 3)


def test_builtin_drugscom_is_real_and_offline():
    splits, names, info = load_labelled(DataConfig(dataset="drugscom"))
    assert names == ["negative", "neutral", "positive"]
    assert len(splits["train"]) + len(splits["validation"]) == 600
    assert len(splits["test"]) == 379
    assert info["splits_from"]["test"] == "test"


def test_drugscom_train_test_duplicate_is_counted():
    """Counted independently: the shipped test reviews whose exact text is also a shipped train review."""
    from peftbench.data.data import load_drugscom

    raw = load_drugscom()
    expected = sum(text in set(raw["train"]["text"]) for text in raw["test"]["text"])
    splits, _, info = load_labelled(DataConfig(dataset="drugscom", validation_fraction=0.01))
    found = sum(text in set(splits["train"]["text"]) for text in splits["test"]["text"])
    assert expected == 1
    assert info["train_test_duplicates"] == found
    assert info["train_test_duplicates"] + info["validation_test_duplicates"] == expected


def _texts(rows):
    return rows["text"]


def test_carved_test_is_the_same_for_every_training_seed_fraction_and_cap(reviews_csv):
    """The training seed is no input of the data layer; fractions and caps leave the test set alone."""
    base = load_labelled(DataConfig(dataset=str(reviews_csv)))[0]
    for change in ({"data_fraction": 0.5}, {"max_train_samples": 7}, {"data_fraction": 0.3}):
        other = load_labelled(DataConfig(dataset=str(reviews_csv), **change))[0]
        assert other["test"]["text"] == base["test"]["text"]
    moved = load_labelled(DataConfig(dataset=str(reviews_csv), split_seed=7))[0]
    assert moved["test"]["text"] != base["test"]["text"]


def test_smaller_fraction_keeps_a_subset_of_train_and_validation(reviews_csv):
    small = load_labelled(DataConfig(dataset=str(reviews_csv), data_fraction=0.3))[0]
    larger = load_labelled(DataConfig(dataset=str(reviews_csv), data_fraction=0.6))[0]
    for split in ("train", "validation"):
        assert len(small[split]) < len(larger[split])
        assert set(small[split]["text"]) <= set(larger[split]["text"])


def test_carving_is_stratified_by_label(tmp_path):
    path = tmp_path / "skewed.csv"
    write_reviews(path, count=200, labels=("positive", "positive", "positive", "negative"))
    splits, names, _ = load_labelled(DataConfig(dataset=str(path)))
    full = Counter(name for name in ["positive", "positive", "positive", "negative"] * 50)
    for split in ("train", "validation", "test"):
        share = Counter(splits[split]["label"])[names.index("negative")] / len(splits[split])
        assert share == pytest.approx(full["negative"] / 200, abs=0.02), split


def test_carving_keeps_repeated_texts_on_one_side(tmp_path):
    path = tmp_path / "repeats.csv"
    rows = [
        f"{w} {v},{'positive' if i % 2 else 'negative'}"
        for i, (w, v) in enumerate(
            (a, b)
            for a in ("good", "bad", "ok", "meh", "fine", "poor")
            for b in ("drug", "pain", "sleep", "works")
        )
    ]
    path.write_text("text,label\n" + "\n".join(rows * 3) + "\n")
    splits, _, info = load_labelled(DataConfig(dataset=str(path)))
    train, validation, test = (set(splits[s]["text"]) for s in ("train", "validation", "test"))
    assert not train & test and not train & validation and not validation & test
    assert info["train_test_duplicates"] == 0
    assert Counter(splits["test"]["text"]) == dict.fromkeys(test, 3)  # every copy went to test


def test_generation_carve_keeps_every_reference_of_a_prompt_together(tmp_path):
    path = tmp_path / "e2e.csv"
    write_data_to_text(path, meanings=12, references=5)
    config = DataConfig(dataset=str(path))
    loaded = load_splits(config, ["mr", "ref"], "", lambda rows: rows["mr"])
    prompts = {s: Counter(loaded.rows[s]["mr"]) for s in ("train", "validation", "test")}
    assert not set(prompts["train"]) & set(prompts["test"])
    assert not set(prompts["validation"]) & set(prompts["test"])
    assert all(count == 5 for split in prompts.values() for count in split.values())


def test_generation_eval_cap_keeps_whole_prompts(tmp_path):
    path = tmp_path / "e2e.csv"
    write_data_to_text(path, meanings=12, references=5)
    config = DataConfig(dataset=str(path), max_eval_samples=12)
    loaded = load_splits(config, ["mr", "ref"], "", lambda rows: rows["mr"])
    test = Counter(loaded.rows["test"]["mr"])
    assert len(loaded.rows["test"]) <= 12 and set(test.values()) == {5}


def _raw(**splits) -> DatasetDict:
    return DatasetDict({name: Dataset.from_dict({"text": texts}) for name, texts in splits.items()})


def _make(raw: DatasetDict, **config):
    return make_splits(raw, DataConfig(dataset="x", **config), _texts, None)


WORDS = [f"w{i}" for i in range(40)]


def test_validation_never_is_the_test_split():
    raw = _raw(train=WORDS, validation=["a", "b"])
    made = _make(raw, test_split="validation")  # SST-2 style: validation becomes the test, validation carved
    assert made.rows["test"]["text"] == ["a", "b"]
    assert not set(made.rows["validation"]["text"]) & {"a", "b"}
    assert made.info["splits_from"]["validation"].startswith("carved from train")
    with pytest.raises(PeftbenchError, match="also the test split"):
        _make(raw, test_split="validation", validation_split="validation")


def test_validation_that_repeats_the_test_rows_fails():
    raw = _raw(train=WORDS, validation=["a", "b"], test=["b", "a", "c"])
    with pytest.raises(PeftbenchError, match="every validation input also occurs in the test split"):
        _make(raw)


@pytest.mark.parametrize("key", ["test_split", "validation_split", "train_split"])
def test_misspelled_split_names_fail_listing_the_splits(key):
    raw = _raw(train=WORDS, validation=["a"], test=["b"])
    with pytest.raises(
        PeftbenchError, match=rf"data.{key} 'tset' is not a split .*\['train', 'validation', 'test'\]"
    ):
        _make(raw, **{key: "tset"})


def test_null_test_split_carves_one_even_when_the_data_has_a_test():
    made = _make(_raw(train=WORDS, test=["b"]), test_split=None)
    assert "b" not in made.rows["test"]["text"] and made.info["splits_from"]["test"].startswith("carved")


def test_duplicates_between_given_train_and_test_are_counted():
    made = _make(_raw(train=[*WORDS, "x"], validation=["v", "x"], test=["x", "y", "x", "w3"]))
    assert made.info["train_test_duplicates"] == 3
    assert made.info["validation_test_duplicates"] == 2


def test_sst2_example_validates_on_a_carve_of_train_not_on_its_test_set():
    from pathlib import Path

    import yaml

    example = Path(__file__).parents[1] / "configs" / "examples" / "seed000-sst2-roberta.yaml"
    section = yaml.safe_load(example.read_text())["data"]
    raw = DatasetDict(
        {
            "train": Dataset.from_dict({"sentence": WORDS * 3, "label": [0, 1] * 60}),
            "validation": Dataset.from_dict({"sentence": ["v1", "v2", "v3"], "label": [0, 1, 0]}),
            "test": Dataset.from_dict({"sentence": ["t1", "t2"], "label": [-1, -1]}),
        }
    )
    config = DataConfig(**section)
    made = make_splits(raw, config, lambda rows: rows["sentence"], "label")
    assert made.rows["test"]["sentence"] == ["v1", "v2", "v3"]
    assert set(made.rows["validation"]["sentence"]) <= set(WORDS)
    assert made.info["splits_from"]["validation"].startswith("carved from train")


def test_a_group_is_stratified_by_its_most_frequent_label():
    from peftbench.data.splits import _group_labels

    labels = _group_labels(["x", "x", "x", "y", "z", "z"], ["a", "b", "b", 1, "c", "c"])
    assert labels == {"x": "b", "y": "1", "z": "c"}


def test_carving_holds_out_the_stated_fraction_of_inputs_and_records_how():
    texts = [f"review {i}" for i in range(100)]
    raw = DatasetDict(train=Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(100)]}))
    made = make_splits(raw, DataConfig(dataset="x", split_seed=7, data_fraction=0.5), _texts, "label")
    assert len(made.rows["test"]) == 20  # 20% of 100 inputs, never shrunk by data_fraction
    assert len(made.rows["validation"]) == 4  # 10% of the remaining 80, then half of them
    assert made.info["split_seed"] == 7 and made.info["data_fraction"] == 0.5
    assert made.info["stratified_by"] == "label"


def _with_big_group(distinct: int, repeated: int) -> Dataset:
    """`distinct` single-row inputs and one input repeated `repeated` times (empty lines, boilerplate)."""
    keys = [f"line {i}" for i in range(distinct)] + [""] * repeated
    return Dataset.from_dict({GROUP: keys})


@pytest.mark.parametrize("seed", range(8))
def test_a_big_group_that_does_not_fit_is_skipped_and_filling_goes_on(seed):
    rows = _with_big_group(100, 100)
    kept = shrink(rows, 0.3, None, seed)
    assert len(kept) == 60  # 30% of 200, from the 100 single rows whatever the seed puts first
    assert "" not in kept[GROUP]
    assert len(shrink(rows, 1.0, 45, seed)) == 45  # the same under a cap


def test_a_cap_below_every_group_keeps_the_smallest_group():
    rows = Dataset.from_dict({GROUP: ["a"] * 5 + ["b"] * 3 + ["c"] * 4})
    assert shrink(rows, 1.0, 2, seed=0)[GROUP] == ["b"] * 3


def test_the_share_kept_is_recorded_and_a_gap_over_5_percent_is_warned(caplog):
    """10 distinct training inputs and 90 repeats of one: half of train cannot be whole groups."""
    texts = [f"review {i}" for i in range(10)] + ["n/a"] * 90
    raw = DatasetDict(
        train=Dataset.from_dict({"text": texts}),
        validation=Dataset.from_dict({"text": [f"check {i}" for i in range(20)]}),
        test=Dataset.from_dict({"text": [f"exam {i}" for i in range(20)]}),
    )
    with caplog.at_level(logging.WARNING, logger="peftbench"):
        made = make_splits(raw, DataConfig(dataset="x", data_fraction=0.5), _texts, None)
    shares = made.info["shares"]
    assert shares["train"] == {"available": 100, "asked_rows": 50, "kept_rows": 10, "asked": 0.5, "kept": 0.1}
    assert shares["validation"]["kept_rows"] == 10 and shares["validation"]["kept"] == 0.5
    assert shares["test"] == {"available": 20, "asked_rows": 20, "kept_rows": 20, "asked": 1.0, "kept": 1.0}
    warned = [r.getMessage() for r in caplog.records if "kept" in r.getMessage()]
    assert warned == [
        "train split kept 10 of 100 rows (10.0%) where data_fraction and the caps asked for 50 (50.0%): its "
        "inputs come in groups of repeated rows too large to fit; deduplicate the data or change the fraction"
    ]


def test_share_warning_fires_only_beyond_5_percent_of_the_rows_asked():
    assert share_warning("train", share(95, 1000, 100)) is None  # 5% off: within
    assert share_warning("train", share(105, 1000, 100)) is None
    assert share_warning("train", share(94, 1000, 100)).startswith("train split kept 94 of 1000 rows")
