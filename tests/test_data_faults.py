"""A catalogue of broken data files: each ends in one PeftbenchError line naming the problem and the fix."""

import pytest
import yaml
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.config.config import DataConfig
from peftbench.errors import PeftbenchError
from peftbench.tasks.classification import load_labelled

ROWS = "".join(f"{w} drug {i},{'positive' if i % 2 else 'negative'}\n" for i, w in enumerate(["good"] * 30))

FAULTS = {
    "header_only": (b"text,label\n", r"holds no rows \(only a header\?\); add examples"),
    "not_utf8": (
        b"text,label\ngood drug,positive\n\xe9t\xe9 bad,negative\n",
        r"not UTF-8 text \(byte 0xe9 on line 3\)",
    ),
    "empty_label": (
        ("text,label\n" + ROWS + "bad pain,\n").encode(),
        r"row 31 of the train split has an empty 'label' cell; fill it in or drop the row",
    ),
    "two_rows": (
        b"text,label\ngood drug,positive\nbad pain,negative\n",
        r"too few rows to carve a test split \(20% of train\): train has 2 rows, 2 distinct inputs; "
        r"it needs at least 6 distinct inputs with 2 classes",
    ),
    "single_class": (
        ("text,label\n" + "".join(f"good drug {i},positive\n" for i in range(30))).encode(),
        r"single class \['positive'\]",
    ),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_faulty_file_gives_one_line_error(tmp_path, fault):
    content, message = FAULTS[fault]
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(PeftbenchError, match=message) as caught:
        load_labelled(DataConfig(dataset=str(path)))
    assert "\n" not in str(caught.value)


def test_test_labels_that_train_never_saw_are_named(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("text,label\n" + ROWS)
    test.write_text("text,label\ngood drug,positive\nso so,neutral\nmeh,mixed\n")
    with pytest.raises(PeftbenchError, match=r"test split has labels \['mixed', 'neutral'\] that the train"):
        load_labelled(DataConfig(dataset=str(train), test_file=str(test)))


def test_integer_labels_train_never_saw_are_not_mapped_to_a_class(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("text,label\n" + "".join(f"w{i},{1 + i % 2}\n" for i in range(30)))
    test.write_text("text,label\nx,1\ny,0\n")
    with pytest.raises(PeftbenchError, match=r"labels \['0'\] that the train split never has"):
        load_labelled(DataConfig(dataset=str(train), test_file=str(test)))


def test_run_prints_the_data_fault_on_one_line(tmp_path, tiny_bert):
    data = tmp_path / "data.csv"
    data.write_bytes(FAULTS["header_only"][0])
    config = {
        "name": "faulty",
        "model": str(tiny_bert),
        "data": {"dataset": str(data)},
        "methods": [{"method": "head"}],
        "baselines": False,
        "output_dir": str(tmp_path / "runs"),
    }
    path = tmp_path / "faulty.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["run", str(path), "--inline"])
    assert result.exit_code != 0
    assert "holds no rows" in result.output and "Traceback" not in result.output


def test_the_stated_minimum_is_what_sklearn_can_carve():
    """The 'needs at least 6' above, checked against sklearn itself: 6 inputs carve, 5 do not."""
    from sklearn.model_selection import train_test_split

    def labels(count):
        return [("a", "b")[i % 2] for i in range(count)]

    with pytest.raises(ValueError):
        train_test_split(range(5), test_size=0.2, stratify=labels(5), random_state=0)
    _, held = train_test_split(range(6), test_size=0.2, stratify=labels(6), random_state=0)
    assert len(held) == 2
