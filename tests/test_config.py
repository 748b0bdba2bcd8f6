from pathlib import Path

import pytest
import yaml
from datasets import Dataset, DatasetDict
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.config.config import apply_overrides
from peftbench.data import data
from peftbench.errors import PeftbenchError
from peftbench.inputs.experiment import build_config, load_config

CONFIGS = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml")) + sorted(
    (Path(__file__).parents[1] / "src" / "peftbench" / "demos").glob("*.yaml")
)
# The split names the shipped configs' datasets really have (the hub cannot be reached in tests).
SPLITS = {
    "drugscom": ("train", "test"),
    "stanfordnlp/sst2": ("train", "validation", "test"),
    "Salesforce/wikitext": ("train", "validation", "test"),
    "GEM/e2e_nlg": ("train", "validation", "test"),
    "abisee/cnn_dailymail": ("train", "validation", "test"),
    "stanfordnlp/imdb": ("train", "test", "unsupervised"),
    "PolyAI/banking77": ("train", "test"),
}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    result = CliRunner().invoke(app, ["validate", str(path)])  # what a user runs
    assert result.exit_code == 0 and result.output.startswith("ok: "), result.output
    assert load_config(path).methods


def _split_rows(config_path: Path, monkeypatch) -> dict[str, set[str]]:
    """The rows each split of a run gets, the hub dataset replaced by one with the same split names."""
    config = load_config(config_path)
    assert config.data.dataset in SPLITS, "add the dataset's split names to SPLITS"
    kept = {column: [str(values[0])] * 50 for column, values in (config.data.keep_rows or {}).items()}
    raw = DatasetDict(
        {
            name: Dataset.from_dict({"row": [f"{name}-{i}" for i in range(50)], **kept})
            for name in SPLITS[config.data.dataset]
        }
    )
    monkeypatch.setattr(data, "load_raw", lambda _: raw)
    splits = data.load_splits(config.data, ["row"], hint="", group_by=lambda rows: rows["row"])
    return {name: set(split["row"]) for name, split in splits.rows.items()}


def _disjoint(rows: dict[str, set[str]]) -> bool:
    return not (rows["train"] & rows["validation"] or rows["train"] & rows["test"]) and not (
        rows["validation"] & rows["test"]
    )


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_keep_test_rows_out_of_selection(path, monkeypatch):
    assert _disjoint(_split_rows(path, monkeypatch))


def test_split_check_catches_validation_equal_to_test(tmp_path, monkeypatch):
    broken = yaml.safe_load(CONFIGS[0].read_text())
    broken["data"].update(
        {"dataset": "stanfordnlp/sst2", "test_split": "validation", "validation_split": "validation"}
    )
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(PeftbenchError, match="validation"):
        _split_rows(path, monkeypatch)


def test_misspelled_key_suggests_closest(experiment):
    experiment["training"]["learnin_rate"] = 1e-3
    with pytest.raises(PeftbenchError, match="unknown config key 'training.learnin_rate'.*'learning_rate'"):
        build_config(experiment)


def test_unknown_method_suggests(experiment):
    experiment["methods"] = [{"method": "bitfti"}]
    with pytest.raises(PeftbenchError, match="did you mean 'bitfit'"):
        build_config(experiment)


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5])
def test_data_fraction_outside_unit_interval(experiment, fraction):
    experiment["data"]["data_fraction"] = fraction
    with pytest.raises(PeftbenchError, match="data.data_fraction"):
        build_config(experiment)


def test_overrides_parse_yaml_values(experiment):
    raw = apply_overrides(experiment, ["training.epochs=2", "training.precision=bf16", "seed=7"])
    config = build_config(raw)
    assert (config.training.epochs, config.training.precision, config.seed) == (2, "bf16", 7)


def test_method_learning_rate_overrides_default(experiment):
    experiment["methods"][1]["learning_rate"] = 5e-3
    config = build_config(experiment)
    assert config.method_training(config.methods[1]).learning_rate == 5e-3
    assert config.method_training(config.methods[0]).learning_rate == 1e-3


def test_duplicate_run_names_rejected(experiment):
    experiment["methods"] = [{"method": "lora"}, {"method": "lora"}]
    with pytest.raises(PeftbenchError, match="run names repeat"):
        build_config(experiment)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(PeftbenchError, match="not valid YAML"):
        load_config(path)


def test_trust_remote_code_off_by_default(experiment):
    assert build_config(experiment).model.trust_remote_code is False


def test_unknown_task_suggests(experiment):
    experiment["task"] = "generaton"
    with pytest.raises(PeftbenchError, match="unknown task 'generaton'.*did you mean 'generation'"):
        build_config(experiment)


def test_misspelled_generation_key_suggests(experiment):
    experiment["generation"] = {"max_new_tokns": 3}
    with pytest.raises(PeftbenchError, match="'generation.max_new_tokns'.*'max_new_tokens'"):
        build_config(experiment)


def test_run_reports_a_mistyped_key_before_it_reaches_the_registries(experiment, tmp_path):
    """The schema check is light (no torch): `peftbench run` on a typo answers in under a second, before
    the registries' imports (read from the interpreter's own -X importtime trace)."""
    import subprocess
    import sys

    experiment["trainng"] = experiment.pop("training")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(experiment))
    command = [sys.executable, "-X", "importtime", "-m", "peftbench", "run", str(path), "--inline"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown config key 'trainng' (did you mean 'training'?)" in result.stdout + result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "peftbench.cli" in imported
    assert not imported & {"torch", "transformers", "peft", "peftbench.methods", "peftbench.tasks"}


def test_the_schema_check_imports_no_torch(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "typo.yaml"
    path.write_text("name: x\nmodel: m\ndata: {dataset: d}\ntrainng: {}\n")
    code = (
        "import sys\nfrom peftbench.config.files import check_schema, read_yaml\n"
        f"try:\n    check_schema(read_yaml({str(path)!r}))\nexcept Exception as exc:\n    print(exc)\n"
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "unknown config key 'trainng'" in shown and shown.rstrip().endswith("[]")
